// GEMM sequencer: C[M x NB*N] (+)= A[M x KB*N] * B[KB*N x NB*N] on the systolic array.
//
// Tiles run nb-outer, kb-inner. Two processes overlap: the loader writes tile t+1's weights
// into the idle bank (one row per cycle, N cycles) while the injector streams tile t's M
// activation rows (one per cycle). A bank is reloaded only N cycles after the last row that
// used it entered the array, which is when that row has passed every PE of the bank. The
// injector may start a tile in the cycle after the loader read that tile's last row.
// Matrices are column-block-major: element (row i, block j) lives at SRAM row base + j*rows + i.
//
// Memories are synchronous-read SRAMs, one read port each for this unit: the loader and the
// injector put a row address out in cycle t and the row arrives in t+1 from the SRAM's output
// register (in accel_top), so the array sees every write / injection one cycle after the
// sequencer decided it (the *_q registers below). The loader starts in the start cycle, so the
// one-cycle read costs no busy cycle. When B lives in the activation SRAM (b_from_a) the
// loader and the injector share the A port: the injector has priority and the loader reads in
// the cycles the injector leaves free (between tiles, or while the injector waits for a bank).
// The accumulator is read one cycle ahead of the array's output row (the array's next_tag) and
// written back, C + product, through the single ACC write port one cycle later.
module gemm_unit #(
    parameter int N = 16
) (
    input  logic            clk,
    input  logic            rst_n,
    input  logic            start,
    input  logic [15:0]     m_rows,
    input  logic [7:0]      kb_n,
    input  logic [7:0]      nb_n,
    input  logic [15:0]     c_base,
    input  logic [15:0]     a_base,
    input  logic [15:0]     b_base,
    input  logic            accumulate,
    input  logic            transpose_b,
    input  logic            b_from_a,     // B rows come from the activation SRAM (the A port)
    output logic            busy,
    output logic            done,
    // synchronous read requests: enable and address in cycle t, that row's data in t+1 (the
    // address is meaningless without its enable)
    output logic            a_re,
    output logic [15:0]     a_raddr,      // activation SRAM: A rows, and B rows when b_from_a
    input  logic [N*8-1:0]  a_rdata,
    output logic            w_re,
    output logic [15:0]     w_raddr,      // weight SRAM: B rows
    input  logic [N*8-1:0]  w_rdata,
    output logic            c_re,
    output logic [15:0]     c_raddr,      // accumulator: the old C row (accumulate, K block > 0)
    input  logic [N*32-1:0] c_rdata,
    // accumulator write port
    output logic            c_we,
    output logic [15:0]     c_waddr,
    output logic [N*32-1:0] c_wdata
);
  localparam int TAGW = 17;  // {accumulate, acc row}

  logic [31:0] now;
  logic [15:0] tiles;
  // loader
  logic        ld_busy;
  logic [15:0] ld_tile;
  logic [7:0]  ld_kb, ld_nb;
  logic [$clog2(N)-1:0] ld_j;
  // injector
  logic        inj_busy;
  logic [15:0] inj_tile;
  logic [7:0]  inj_kb, inj_nb;
  logic [15:0] inj_m;
  // banks
  logic [1:0]  loaded;
  logic [31:0] free_at [2];
  // what the array does one cycle after the sequencer (when the rows read arrive)
  logic        ld_we_q, ld_bank_q, inj_q, inj_bank_q;
  logic [$clog2(N)-1:0] ld_j_q;
  logic [TAGW-1:0] inj_tag_q;

  logic        arr_out_valid, arr_inflight, arr_next_valid;
  logic [TAGW-1:0] arr_out_tag, arr_next_tag;
  logic [N*32-1:0] arr_out_row;

  wire ld_bank  = ld_tile[0];
  wire inj_bank = inj_tile[0];
  // A-port arbitration (b_from_a): the injector first, the loader in its free cycles
  wire ld_rd  = ld_busy && !(b_from_a && inj_busy);
  wire ld_fin = ld_rd && (32'(ld_j) == N - 1);    // the tile's last weight row is read now
  // a bank whose last row is read this cycle is ready for the injector from the next one
  wire [1:0] ready = loaded | ({1'b0, ld_fin} << ld_bank);
  wire ld_can_start = busy && !ld_busy && (ld_tile < tiles) && !loaded[ld_bank]
                      && (now >= free_at[ld_bank]);
  wire inj_can_start = busy && !inj_busy && (inj_tile < tiles) && ready[inj_bank];

  // Row addresses. Transposed B (for Q*K^T) reads K's rows into PE columns.
  // 16-bit row arithmetic: the controller has range-checked the whole extent at decode.
  logic [15:0] b_row;
  always_comb begin
    if (transpose_b)
      b_row = b_base + 16'(ld_kb) * 16'(nb_n) * 16'(N) + 16'(ld_nb) * 16'(N) + 16'(ld_j);
    else
      b_row = b_base + 16'(ld_nb) * 16'(kb_n) * 16'(N) + 16'(ld_kb) * 16'(N) + 16'(ld_j);
  end
  wire [15:0] a_row = a_base + 16'(inj_kb) * m_rows + inj_m;
  wire [15:0] c_row = c_base + 16'(inj_nb) * m_rows + inj_m;
  assign a_raddr = (b_from_a && !inj_busy) ? b_row : a_row;
  assign w_raddr = b_row;
  // the injector reads an A row per cycle; the loader a B row (from A when b_from_a)
  assign a_re = busy && (inj_busy || (b_from_a && ld_rd));
  assign w_re = busy && ld_rd && !b_from_a;
  wire inj_acc = accumulate || (inj_kb != 8'd0);

  always_ff @(posedge clk or negedge rst_n) begin
    if (!rst_n) begin
      ld_we_q <= 1'b0; inj_q <= 1'b0;
    end else begin
      ld_we_q <= busy && ld_rd;
      inj_q   <= busy && inj_busy;
    end
  end
  always_ff @(posedge clk) begin
    ld_bank_q <= ld_bank; ld_j_q <= ld_j;
    inj_bank_q <= inj_bank; inj_tag_q <= {inj_acc, c_row};
  end

  systolic_array #(.N(N), .TAGW(TAGW)) u_array (
    .clk, .rst_n, .en(busy),
    .in_valid(inj_q), .in_row(a_rdata), .in_bank(inj_bank_q), .in_tag(inj_tag_q),
    .w_we(ld_we_q), .w_bank(ld_bank_q), .w_idx(ld_j_q), .w_transpose(transpose_b),
    .w_row(b_from_a ? a_rdata : w_rdata),
    .out_valid(arr_out_valid), .out_tag(arr_out_tag), .out_row(arr_out_row),
    .next_tag(arr_next_tag), .next_valid(arr_next_valid), .inflight(arr_inflight)
  );

  // Accumulator write-back: int32 wrap-around add. The old row was read in the cycle before;
  // two writes of one C row are at least 2 cycles apart (M-1 other rows, or for M = 1 a tile
  // load, lie between them), so that read never misses the previous write of the same row.
  assign c_raddr = arr_next_tag[15:0];
  assign c_re    = arr_next_valid && arr_next_tag[16];   // only a row whose old value is added
  assign c_we    = arr_out_valid;
  assign c_waddr = arr_out_tag[15:0];
  always_comb begin
    for (int c = 0; c < N; c++)
      c_wdata[c*32 +: 32] = (arr_out_tag[16] ? c_rdata[c*32 +: 32] : 32'd0) + arr_out_row[c*32 +: 32];
  end

  wire finished = busy && (inj_tile == tiles) && !inj_busy && !inj_q && !arr_inflight;

  always_ff @(posedge clk or negedge rst_n) begin
    if (!rst_n) begin
      busy <= 1'b0; done <= 1'b0; now <= '0; tiles <= '0;
      ld_busy <= 1'b0; ld_tile <= '0; ld_kb <= '0; ld_nb <= '0; ld_j <= '0;
      inj_busy <= 1'b0; inj_tile <= '0; inj_kb <= '0; inj_nb <= '0; inj_m <= '0;
      loaded <= '0; free_at[0] <= '0; free_at[1] <= '0;
    end else begin
      done <= 1'b0;
      if (start && !busy) begin
        // the first tile's load starts now: both banks are free and there is at least one tile
        busy <= 1'b1; now <= '0; tiles <= 16'(kb_n) * 16'(nb_n);
        ld_tile <= '0; ld_kb <= '0; ld_nb <= '0; ld_j <= '0; ld_busy <= 1'b1;
        inj_tile <= '0; inj_kb <= '0; inj_nb <= '0; inj_m <= '0; inj_busy <= 1'b0;
        loaded <= '0; free_at[0] <= '0; free_at[1] <= '0;
      end else if (busy) begin
        now <= now + 32'd1;
        // ---- loader ----
        if (ld_busy) begin
          if (ld_rd) begin
            ld_j <= ld_j + 1'b1;
            if (ld_fin) begin
              ld_busy <= 1'b0;
              loaded[ld_bank] <= 1'b1;
              ld_tile <= ld_tile + 16'd1;
              if (ld_kb == kb_n - 8'd1) begin ld_kb <= '0; ld_nb <= ld_nb + 8'd1; end
              else ld_kb <= ld_kb + 8'd1;
            end
          end
        end else if (ld_can_start) begin
          ld_busy <= 1'b1; ld_j <= '0;
        end
        // ---- injector ----
        if (inj_busy) begin
          inj_m <= inj_m + 16'd1;
          if (inj_m == m_rows - 16'd1) begin
            // Chain straight into the next tile when its weights are in place.
            inj_busy <= (inj_tile + 16'd1 < tiles) && ready[~inj_bank];
            inj_m <= '0;
            loaded[inj_bank] <= 1'b0;
            free_at[inj_bank] <= now + N;
            inj_tile <= inj_tile + 16'd1;
            if (inj_kb == kb_n - 8'd1) begin inj_kb <= '0; inj_nb <= inj_nb + 8'd1; end
            else inj_kb <= inj_kb + 8'd1;
          end
        end else if (inj_can_start) begin
          inj_busy <= 1'b1; inj_m <= '0;
        end
        if (finished) begin busy <= 1'b0; done <= 1'b1; end
      end
    end
  end

`ifndef SYNTHESIS
  // Streaming needs loaded weights; a bank being written must not be the one streaming; the
  // shared A port carries one row per cycle.
  always_ff @(posedge clk) begin
    if (busy && inj_busy) assert (loaded[inj_bank]);
    if (busy && ld_busy) assert (!(inj_busy && inj_bank == ld_bank));
    if (busy && b_from_a) assert (!(ld_rd && inj_busy));
  end
`endif
endmodule
