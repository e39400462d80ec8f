// Sequential integer vector unit: one element per cycle, plus a shared iterative divider
// (48 cycles) and square root (16 cycles) for the per-row reductions of RMSNorm and softmax.
// Narrow on purpose: the systolic array does the O(n^3) work; this unit does O(n^2).
//
// Elements are addressed column-block-major like the GEMM: element (r, blk, e) is byte/word e
// of SRAM row base + blk*rows + r. Outputs are int8, written to the activation SRAM.
module vector_unit
  import accel_pkg::*;
#(
    parameter int N = 16
) (
    input  logic            clk,
    input  logic            rst_n,
    input  logic            start,
    input  logic [7:0]      op,
    input  logic [1:0]      flags,     // COLSCALE_A, COLSCALE_B (validated by the controller)
    input  logic [15:0]     rows,
    input  logic [7:0]      blocks,
    input  logic [7:0]      aux,       // ROPE: head_dim
    input  logic [15:0]     dst,
    input  logic [15:0]     src0,
    input  logic [15:0]     src1,
    input  logic [15:0]     src2,      // SMAX: q_off; ROPE: blocks per head (table stride)
    input  logic [15:0]     mult0,
    input  logic [5:0]      shift0,
    input  logic [15:0]     mult1,
    input  logic [5:0]      shift1,
    input  logic [15:0]     cs0,       // W row of the column-scale table of the first ACC operand
    input  logic [15:0]     cs1,       // W row of the column-scale table of SWIGLU's up operand
    output logic            busy,
    output logic            done,
    // memory ports (combinational reads)
    output logic [15:0]     a_raddr,
    input  logic [N*8-1:0]  a_rdata,
    output logic [15:0]     w_raddr,
    input  logic [N*8-1:0]  w_rdata,
    // column-scale table reads (a small dedicated bank in silicon; see ISA.md)
    output logic [15:0]     w_raddr1,
    input  logic [N*8-1:0]  w_rdata1,
    output logic [15:0]     w_raddr2,
    input  logic [N*8-1:0]  w_rdata2,
    output logic [15:0]     c_raddr0,
    input  logic [N*32-1:0] c_rdata0,
    output logic [15:0]     c_raddr1,
    input  logic [N*32-1:0] c_rdata1,
    output logic            a_we,
    output logic [15:0]     a_waddr,
    output logic [$clog2(N)-1:0] a_wbyte,
    output logic [7:0]      a_wdata
);
  typedef enum logic [2:0] {S_IDLE, S_P1, S_P2, S_DIV, S_SQRT, S_OUT} state_t;
  state_t      state;
  logic [15:0] r;
  logic [7:0]  blk;
  logic [15:0] hb;         // ROPE: block index within the current head (0 .. src2-1)
  logic [$clog2(N)-1:0] e;
  longint      acc;        // RMS: sum of squares; SMAX: sum of exp
  longint      mx;         // SMAX: row max of the Q10 logits
  longint      scale;      // RMS: 2^30 / rms; SMAX: 127 * 2^24 / sum
  logic        div_second; // RMS runs two divisions
  // iterative divider / square root
  logic [47:0] dv_num;
  logic [32:0] dv_rem;
  logic [31:0] dv_den;
  logic [47:0] dv_q;
  logic [5:0]  dv_i;
  logic [31:0] sq_op, sq_res, sq_one;
  logic [4:0]  sq_i;

  wire last_e   = (32'(e) == N - 1);
  wire last_blk = (blk == blocks - 8'd1);
  wire last_row = (r == rows - 16'd1);
  // 16-bit row arithmetic: the controller has range-checked every extent at decode.
  wire [15:0] row_a = src0 + 16'(blk) * rows + r;
  wire [15:0] row_b = src1 + 16'(blk) * rows + r;
  wire [15:0] row_d = dst  + 16'(blk) * rows + r;
  wire [31:0] col   = 32'(blk) * N + 32'(e);

  // ROPE: rotate-half partner within a head of aux elements; table entry {sin16, cos16}.
  wire [7:0]  half    = aux >> 1;
  wire        lo_half = (8'(e) < half);
  wire [7:0]  pair_i  = lo_half ? 8'(e) : 8'(e) - half;
  wire [7:0]  partner = lo_half ? 8'(e) + half : 8'(e) - half;
  wire [15:0] rope_rows_per_pos = 16'((32'(aux) * 2 + N - 1) / N);
  wire [31:0] tbl_byte = 32'(pair_i) * 4;
  // table entry for (position r, block-within-head hb): row src1 + (r*bph + hb)*rows_per_pos
  wire [15:0] tbl_row  = src1 + (r * src2 + hb) * rope_rows_per_pos + 16'(tbl_byte / N);

  // Column scales: one uint16 per column; column c of a table at W row t is bytes 2c, 2c+1
  // counted from row t. ROPE also needs its partner lane's scale (same block, maybe other row).
  wire [31:0] col_p    = 32'(blk) * N + 32'(partner);
  wire [31:0] cs_byte  = (col * 2) % N;
  wire [31:0] csp_byte = (col_p * 2) % N;
  assign w_raddr1 = cs0 + 16'((col * 2) / N);
  assign w_raddr2 = (op == OP_ROPE) ? cs0 + 16'((col_p * 2) / N) : cs1 + 16'((col * 2) / N);

  always_comb begin
    a_raddr  = row_a;
    c_raddr0 = row_a;
    c_raddr1 = row_b;
    w_raddr  = (op == OP_ROPE) ? tbl_row : 16'(32'(src1) + 32'(blk));
    if (op == OP_RESADD) c_raddr0 = row_b;
  end

  // ---- element values this cycle ----
  // x_c0 / x_c1 / xp are the ACC operands after the optional per-column scaling.
  longint x_a, x_c0, x_c1, xp, g_w, z;
  logic   col_ok;
  always_comb begin
    x_a  = longint'($signed(a_rdata[32'(e)*8 +: 8]));
    x_c0 = longint'($signed(c_rdata0[32'(e)*32 +: 32]));
    x_c1 = longint'($signed(c_rdata1[32'(e)*32 +: 32]));
    xp   = longint'($signed(c_rdata0[32'(partner)*32 +: 32]));
    if (flags[0]) begin
      x_c0 = colscale(x_c0, w_rdata1[cs_byte*8 +: 16]);
      xp   = colscale(xp, w_rdata2[csp_byte*8 +: 16]);
    end
    if (flags[1]) x_c1 = colscale(x_c1, w_rdata2[cs_byte*8 +: 16]);
    g_w  = longint'($signed(w_rdata[32'(e)*8 +: 8]));
    z    = rshift_round(x_c0 * longint'({48'd0, mult0}), shift0);
    col_ok = (col <= 32'(r) + 32'(src2));
  end

  logic [7:0] out_byte;
  always_comb begin
    longint y, g, sg, silu, prod, cs, sn, p;
    logic [15:0] cos_w, sin_w;
    out_byte = 8'd0;
    cos_w = w_rdata[(tbl_byte % N) * 8 +: 16];
    sin_w = w_rdata[(tbl_byte % N) * 8 + 16 +: 16];
    case (op)
      OP_REQ: out_byte = requant(x_c0, mult0, shift0);
      OP_RMS: out_byte = requant(x_a * g_w * scale, mult0, shift0);
      OP_ROPE: begin
        cs = longint'($signed(cos_w));
        sn = longint'($signed(sin_w));
        y  = lo_half ? (x_c0 * cs - xp * sn) : (x_c0 * cs + xp * sn);
        out_byte = (8'(e) < aux) ? requant(y, mult0, shift0) : 8'd0;
      end
      OP_SMAX: begin
        p = (iexp_q15(z - mx) * scale + (64'sd1 <<< 23)) >>> 24;
        if (p > 127) p = 127;
        out_byte = col_ok ? p[7:0] : 8'd0;
      end
      OP_SWIGLU: begin
        g = z;
        if (g > SILU_CLAMP) g = SILU_CLAMP;
        if (g < -SILU_CLAMP) g = -SILU_CLAMP;
        sg = sigmoid_q15(g);
        silu = rshift_round(g * sg, 6'd15);
        prod = rshift_round(silu * x_c1, 6'd10);
        out_byte = requant(prod, mult1, shift1);
      end
      // the accumulator term is first rounded into the residual's fixed point (shift1)
      OP_RESADD: out_byte = sat8(rshift_round(x_a * longint'({48'd0, mult0})
                     + rshift_round(x_c0 * longint'({48'd0, mult1}), shift1), shift0));
      default: out_byte = 8'd0;
    endcase
  end

  assign a_we    = (state == S_OUT);
  assign a_waddr = row_d;
  assign a_wbyte = e;
  assign a_wdata = out_byte;

  // step the (blk, e) element cursor; returns 1 at the end of a row
  task automatic step_elem(output logic row_end);
    row_end = 1'b0;
    if (last_e) begin
      e <= '0;
      hb <= (hb == src2 - 16'd1) ? 16'd0 : hb + 16'd1;
      if (last_blk) begin blk <= '0; hb <= '0; row_end = 1'b1; end
      else blk <= blk + 8'd1;
    end else e <= e + 1'b1;
  endtask

  task automatic start_div(input logic [47:0] num, input logic [31:0] den);
    dv_num <= num; dv_den <= den; dv_rem <= '0; dv_q <= '0; dv_i <= 6'd47;
    state <= S_DIV;
  endtask

  task automatic begin_row(input logic [7:0] o);
    acc <= 0; mx <= 64'sh8000_0000_0000_0000; blk <= '0; e <= '0; hb <= '0;
    if (o == OP_RMS || o == OP_SMAX) state <= S_P1; else state <= S_OUT;
  endtask

  always_ff @(posedge clk or negedge rst_n) begin
    if (!rst_n) begin
      state <= S_IDLE; busy <= 1'b0; done <= 1'b0;
      r <= '0; blk <= '0; hb <= '0; e <= '0; acc <= 0; mx <= 0; scale <= 0; div_second <= 1'b0;
      dv_num <= '0; dv_rem <= '0; dv_den <= '0; dv_q <= '0; dv_i <= '0;
      sq_op <= '0; sq_res <= '0; sq_one <= '0; sq_i <= '0;
    end else begin
      logic row_end;
      done <= 1'b0;
      case (state)
        S_IDLE: if (start) begin
          busy <= 1'b1; r <= '0; div_second <= 1'b0;
          begin_row(op);
        end
        S_P1: begin  // RMS: sum of squares; SMAX: row max over the causal columns
          if (op == OP_RMS) acc <= acc + x_a * x_a;
          else if (col_ok && z > mx) mx <= z;
          step_elem(row_end);
          if (row_end) begin
            if (op == OP_RMS) begin
              // mean square in Q16: (ss << 16) / n, n = blocks * N
              start_div(48'((acc + x_a * x_a) <<< 16), 32'(blocks) * N);
              div_second <= 1'b0;
            end else state <= S_P2;
          end
        end
        S_P2: begin  // SMAX: sum of exp
          if (col_ok) acc <= acc + iexp_q15(z - mx);
          step_elem(row_end);
          if (row_end) begin
            // the sum is below 2^31: at most 4080 columns of exp <= 2^15
            start_div(48'(127) << 24, 32'(col_ok ? acc + iexp_q15(z - mx) : acc));
          end
        end
        S_DIV: begin  // restoring division, one quotient bit per cycle
          logic [33:0] rem2;  // remainder < divisor < 2^32, so 34 bits never overflow
          rem2 = {dv_rem, dv_num[dv_i]};
          if (dv_den != 0 && rem2 >= 34'(dv_den)) begin
            dv_rem <= 33'(rem2 - 34'(dv_den)); dv_q[dv_i] <= 1'b1;
          end else dv_rem <= 33'(rem2);
          dv_i <= dv_i - 6'd1;
          if (dv_i == 6'd0) begin
            logic [47:0] q;
            q = dv_q;
            if (dv_den != 0 && rem2 >= 34'(dv_den)) q[0] = 1'b1;
            if (dv_den == 0) q = '0;
            if (op == OP_RMS && !div_second) begin
              sq_op <= q[31:0]; sq_res <= '0; sq_one <= 32'h4000_0000; sq_i <= 5'd0;
              state <= S_SQRT;
            end else begin
              scale <= longint'({16'd0, q});
              state <= S_OUT;
            end
          end
        end
        S_SQRT: begin  // digit-by-digit floor(sqrt), two bits of the operand per cycle
          if (sq_op >= sq_res + sq_one) begin
            sq_op <= sq_op - (sq_res + sq_one);
            sq_res <= (sq_res >> 1) + sq_one;
          end else sq_res <= sq_res >> 1;
          sq_one <= sq_one >> 2;
          sq_i <= sq_i + 5'd1;
          if (sq_i == 5'd15) begin
            logic [31:0] root;
            root = (sq_op >= sq_res + sq_one) ? (sq_res >> 1) + sq_one : sq_res >> 1;
            if (root == 0) root = 32'd1;
            start_div(48'h4000_0000, root);
            div_second <= 1'b1;
          end
        end
        S_OUT: begin
          step_elem(row_end);
          if (row_end) begin
            if (last_row) begin state <= S_IDLE; busy <= 1'b0; done <= 1'b1; end
            else begin r <= r + 16'd1; begin_row(op); end
          end
        end
        default: state <= S_IDLE;
      endcase
    end
  end
endmodule
