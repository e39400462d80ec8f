// Pipelined integer vector unit: LANES elements per cycle (vector_lane.sv, one per lane), a
// 13-stage datapath with at most one multiplier per stage, and a shared iterative divider /
// square root (2 bits per cycle) for the per-row reductions of RMSNorm and softmax.
//
// Elements are addressed column-block-major like the GEMM: element (r, blk, e) is byte/word e
// of SRAM row base + blk*rows + r. A beat covers LANES consecutive elements (chunk ch of a
// block, e = ch*LANES + lane): it presents its addresses in cycle t, the memories' read-data
// registers (in accel_top) hold the rows in t+1, and its LANES result bytes are written to the
// activation SRAM, with byte enables, at the end of cycle t+13.
//
// Memory ports: one synchronous read request per SRAM (A, ACC, W) per cycle, each with its
// read enable, and the A write port. So that every beat needs at most one row of each SRAM:
// * the per-block tables (RMS gain: one W row per block; the column-scale tables cs0 / cs1: two
//   W rows per block each) are copied at the start of the instruction, one W row per cycle,
//   into table_sram (an entry per block), which each beat then reads once;
// * SWIGLU reads its up row and then its gate row through the one ACC port, and ROPE with two
//   table rows per (position, block) (tr2) reads row 1 and then row 0 through the W port: such
//   a beat takes two cycles (phase 0 and 1), the first row kept one cycle in c_hold / w_hold.
//   The beat's stage 0 is its phase-1 cycle.
//
// Scheduling (ISA.md "Vector unit timing"; hw_offload/cycle_model.py repeats it):
// * first the table fill, if the op has tables (V_FILL);
// * REQ / ROPE / SWIGLU / RESADD: one item, every (row, block, chunk) beat back to back.
// * RMS / SMAX: per row a reduction item (RMS: sum of squares; SMAX: max pass, then sum-of-exp
//   pass) and an output item. The reduction result goes to the divider, which runs while the
//   sequencer reduces the next row: items are issued in the order RED(0), RED(1), OUT(0),
//   RED(2), OUT(1), ... and an output item waits for its row's divider result.
//   Row constants (RMS: 2^30 / rms; SMAX: the row max and R = 127*2^24 / sum) ride
//   along with each output beat, so a divider result never changes under a row still in flight.
module vector_unit
#(
    parameter int N     = 16,
    parameter int LANES = N
) (
    input  logic            clk,
    input  logic            rst_n,
    input  logic            start,
    input  logic [7:0]      op,
    input  logic [1:0]      flags,     // COLSCALE_A, COLSCALE_B (validated by the controller)
    input  logic [15:0]     rows,
    input  logic [7:0]      blocks,
    input  logic [7:0]      aux,       // ROPE: rotation width
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
    // one synchronous read port per SRAM: address (with its read enable) in cycle t, the row
    // in the SRAM's read-data register (in accel_top) in t+1; without a read enable the
    // address is meaningless and the register may keep its value
    output logic            a_re,
    output logic [15:0]     a_raddr,
    input  logic [N*8-1:0]  a_rdata,
    output logic            c_re,
    output logic [15:0]     c_raddr,
    input  logic [N*32-1:0] c_rdata,
    output logic            w_re,      // table fill, ROPE table rows
    output logic [15:0]     w_raddr,
    input  logic [N*8-1:0]  w_rdata,
    // one activation-SRAM row write per cycle, LANES bytes enabled
    output logic            a_we,
    output logic [15:0]     a_waddr,
    output logic [N-1:0]    a_wbe,
    output logic [N*8-1:0]  a_wdata
);
  localparam int CH = N / LANES;   // beats per column block
  localparam int SW = 13;          // stage in which a beat's bytes are written
  localparam logic [1:0] K_OUT = 2'd0, K_RED1 = 2'd1, K_RED2 = 2'd2;
  // table_sram: an entry per column block (the blocks field is 8 bits), 4 slots of one W row:
  // RMS gain in slot 0; cs0 in slots 0-1, cs1 in slots 2-3 (RMS takes no column scales)
  localparam int TBL_DEPTH = 256;

  // ---------------- issue sequencer ----------------
  typedef enum logic [2:0] {V_IDLE, V_FILL, V_WAIT, V_ISSUE, V_DRAIN} vstate_t;
  vstate_t     state;
  logic        ph;                 // phase of a two-cycle beat (SWIGLU, ROPE with tr2)
  logic [15:0] fill_addr;          // W row the table fill reads this cycle
  logic [8:0]  fill_j;             // row of the table being copied (< 2 * blocks)
  logic        fill_sec;           // 0: RMS gain or cs0; 1: cs1
  logic        tw_en;              // table write of the row the fill read in the last cycle
  logic [7:0]  tw_entry;
  logic [3:0]  tw_slot;
  logic [1:0]  kind;               // kind of the beats being issued
  logic [15:0] r;                  // row of the beats being issued
  logic [15:0] red_next, out_next; // RMS/SMAX: next row to reduce / to output
  logic [7:0]  blk, ch;
  logic [15:0] boff;               // blk * rows
  logic [15:0] hb, hoff;           // ROPE: block within the head, and hb * table rows
  logic [15:0] trow;               // ROPE: table row of (r, hb = 0)
  logic [15:0] col0;               // column of the beat's lane 0: blk*N + ch*LANES
  logic [3:0]  dcnt;

  wire reduce_op = (op == accel_pkg::OP_RMS) || (op == accel_pkg::OP_SMAX);
  // ROPE table rows per (position, block-in-head): ceil(2*aux / N), 1 or 2 since aux <= N
  wire tr2 = (32'(aux) * 2 > N);
  wire [15:0] bph_tr = tr2 ? {src2[14:0], 1'b0} : src2;
  // a beat that needs two rows of one SRAM takes two cycles; it enters the pipe in phase 1
  wire two_phase = (op == accel_pkg::OP_SWIGLU) || (op == accel_pkg::OP_ROPE && tr2);
  wire beat_go   = (state == V_ISSUE) && (!two_phase || ph);
  // table fill: RMS copies its gain (a W row per block), the column-scale flags their tables
  // (two W rows per block each), cs0 before cs1
  wire        has_tbl  = (op == accel_pkg::OP_RMS) || (flags != 2'b00);
  wire [8:0]  fill_len = (op == accel_pkg::OP_RMS) ? 9'(blocks) : {blocks, 1'b0};
  wire        fill_end = (fill_j == fill_len - 9'd1);

  wire last_ch  = (ch == 8'(CH - 1));
  wire last_blk = (blk == blocks - 8'd1);
  wire pass_end = last_ch && last_blk;
  wire last_row = (r == rows - 16'd1);
  // this beat ends its item (an RMS/SMAX row's reduction or output, or a whole simple op)
  wire item_end = pass_end && (reduce_op ? (kind != K_RED1 || op == accel_pkg::OP_RMS) : last_row);
  wire last_item = !reduce_op || (kind == K_OUT && out_next == rows);
  wire want_red = (red_next < rows) && (17'(red_next) <= 17'(out_next) + 17'd1);

  // ---------------- divider / square root and the row-result hand-over ----------------
  typedef enum logic [1:0] {D_IDLE, D_DIV, D_SQRT} dstate_t;
  dstate_t     dstate;
  logic        pend_valid;         // a row's reduction waits for the divider
  logic [31:0] pend_acc;
  logic [47:0] pend_mx;
  logic        res_valid;          // a row's divider result waits for its output item
  logic [30:0] res_k;              // RMS: inv = 2^30 / rms; SMAX: R = 127*2^24 / sum
  logic [47:0] res_mx;
  logic [30:0] oc_k;               // constants of the output item being issued
  logic [47:0] oc_mx;
  logic [31:0] dv_rem, dv_den, dv_bits;
  logic [29:0] dv_q;               // quotient bits so far (the last two come from dv_qa/dv_qb)
  logic [3:0]  dv_i;
  logic        dv_second;          // RMS: the second division (2^30 / root)
  logic [47:0] dv_mx;
  logic [31:0] sq_op, sq_res, sq_one;
  logic [2:0]  sq_i;

  // restoring division, two quotient bits per cycle (remainder < divisor < 2^32)
  wire [32:0] dv_r2a = {dv_rem, dv_bits[31]};
  wire        dv_qa  = (dv_r2a >= 33'(dv_den));
  wire [31:0] dv_ra  = dv_qa ? 32'(dv_r2a - 33'(dv_den)) : dv_r2a[31:0];
  wire [32:0] dv_r2b = {dv_ra, dv_bits[30]};
  wire        dv_qb  = (dv_r2b >= 33'(dv_den));
  wire [31:0] dv_rb  = dv_qb ? 32'(dv_r2b - 33'(dv_den)) : dv_r2b[31:0];
  wire [31:0] dv_qn  = {dv_q[29:0], dv_qa, dv_qb};
  wire [31:0] dv_res = (dv_den == 32'd0) ? 32'd0 : dv_qn;   // golden udiv: x / 0 = 0
  // digit-by-digit floor(sqrt), two of its 16 steps per cycle
  wire [31:0] sq_ta   = sq_res + sq_one;
  wire        sq_ga   = (sq_op >= sq_ta);
  wire [31:0] sq_opa  = sq_ga ? sq_op - sq_ta : sq_op;
  wire [31:0] sq_resa = sq_ga ? (sq_res >> 1) + sq_one : sq_res >> 1;
  wire [31:0] sq_onea = sq_one >> 2;
  wire [31:0] sq_tb   = sq_resa + sq_onea;
  wire        sq_gb   = (sq_opa >= sq_tb);
  wire [31:0] sq_opb  = sq_gb ? sq_opa - sq_tb : sq_opa;
  wire [31:0] sq_resb = sq_gb ? (sq_resa >> 1) + sq_onea : sq_resa >> 1;
  wire [31:0] sq_oneb = sq_onea >> 2;

  // ---------------- addresses of the beat being issued (stage 0) ----------------
  wire [15:0] row_a = src0 + boff + r;
  wire [15:0] row_b = src1 + boff + r;
  wire [15:0] row_d = dst + boff + r;
  // ROPE with tr2: table row 1 in phase 0 (kept in w_hold), row 0 in phase 1
  wire [15:0] trow_b = trow + hoff + 16'(tr2 && !ph);
  always_comb begin
    a_re    = beat_go && (op == accel_pkg::OP_RMS || op == accel_pkg::OP_RESADD);
    a_raddr = row_a;
    // SWIGLU: up (src1) in phase 0, kept in c_hold, and gate (src0) in phase 1
    c_re    = (state == V_ISSUE) && (op != accel_pkg::OP_RMS) &&
              (beat_go || op == accel_pkg::OP_SWIGLU);
    c_raddr = (op == accel_pkg::OP_RESADD || (op == accel_pkg::OP_SWIGLU && !ph)) ? row_b : row_a;
    w_re    = (state == V_FILL) || ((state == V_ISSUE) && op == accel_pkg::OP_ROPE);
    w_raddr = (state == V_FILL) ? fill_addr : trow_b;
  end

  // the first row of a two-cycle beat, one cycle later (stage 1 of the beat)
  logic [N*32-1:0] c_hold;
  logic [N*8-1:0]  w_hold;
  always_ff @(posedge clk) begin
    c_hold <= c_rdata;
    w_hold <= w_rdata;
  end

  // ---------------- per-block tables ----------------
  logic [4*N*8-1:0] tbl_rdata;     // the beat's block's entry, in stage 1
  table_sram #(.SLOTS(4), .SLOT_BITS(N*8), .DEPTH(TBL_DEPTH)) u_tbl (
    .clk, .re(beat_go && has_tbl), .raddr(blk), .rdata(tbl_rdata),
    .wslot(tw_en ? tw_slot : 4'b0000), .waddr(tw_entry), .wdata(w_rdata)
  );
  always_ff @(posedge clk) begin
    tw_entry <= (op == accel_pkg::OP_RMS) ? fill_j[7:0] : fill_j[8:1];
    tw_slot  <= (op == accel_pkg::OP_RMS) ? 4'b0001 : 4'b0001 << {fill_sec, fill_j[0]};
  end

  // ---------------- per-beat tags, one entry per stage ----------------
  /* verilator lint_off UNUSEDSIGNAL */   // each tag is read only at the stages that need it
  logic        t_valid [1:SW];
  logic        t_first [1:SW];
  logic        t_last  [1:SW];
  logic [1:0]  t_kind  [1:SW];
  logic [15:0] t_rowd  [1:SW];
  logic [15:0] t_col0  [1:SW];
  logic [7:0]  t_ch    [1:SW];
  logic [16:0] t_vlim  [1:SW];
  logic [47:0] t_mx    [1:SW];
  logic [30:0] t_k     [1:SW];
  /* verilator lint_on UNUSEDSIGNAL */
  logic [47:0] mx;                 // SMAX: running row max (max pass, stage 5)
  logic [31:0] acc;                // RMS: sum of squares (stage 4); SMAX: sum of exp (stage 12)
  wire [47:0] mx_use5 = (t_kind[5] == K_OUT) ? t_mx[5] : mx;

  always_ff @(posedge clk) begin
    t_valid[1] <= beat_go;
    t_kind[1]  <= kind;
    t_first[1] <= (blk == 8'd0) && (ch == 8'd0);
    t_last[1]  <= pass_end;
    t_rowd[1]  <= row_d;
    t_col0[1]  <= col0;
    t_ch[1]    <= ch;
    t_vlim[1]  <= 17'(r) + 17'(src2);
    t_mx[1]    <= oc_mx;
    t_k[1]     <= oc_k;
    for (int s = 1; s < SW; s++) begin
      t_valid[s+1] <= t_valid[s]; t_kind[s+1] <= t_kind[s]; t_first[s+1] <= t_first[s];
      t_last[s+1] <= t_last[s]; t_rowd[s+1] <= t_rowd[s]; t_col0[s+1] <= t_col0[s];
      t_ch[s+1] <= t_ch[s]; t_vlim[s+1] <= t_vlim[s]; t_k[s+1] <= t_k[s];
      // from stage 6 on, a reduction beat carries the row max it was computed with
      t_mx[s+1] <= (s == 5) ? mx_use5 : t_mx[s];
    end
  end

  // ---------------- lanes ----------------
  // lane l's outputs at bits [l*W +: W] (flat vectors: Yosys 0.23 reads no 2-D packed arrays)
  logic [LANES*15-1:0] xsq3;
  logic [LANES*48-1:0] z4;
  logic [LANES-1:0]    vis4;
  logic [LANES*16-1:0] e11;
  logic [LANES*8-1:0]  byte13;
  for (genvar l = 0; l < LANES; l++) begin : g_lane
    vector_lane #(.N(N), .LANES(LANES)) u_lane (
      .clk, .lane(8'(l)), .op, .flags, .aux, .mult0, .shift0, .mult1, .shift1,
      .a_row(a_rdata), .c0_row(c_rdata), .c1_row(c_hold),
      .w0_row(w_rdata), .w1_row(w_hold), .tbl_row(tbl_rdata),
      .s1_ch(t_ch[1]), .s1_col0(t_col0[1]), .s1_vis_lim(t_vlim[1]),
      .s4_inv(t_k[4]), .s5_mx(mx_use5), .s11_r(t_k[11]),
      .s3_xsq(xsq3[l*15 +: 15]), .s4_z(z4[l*48 +: 48]), .s4_vis(vis4[l]),
      .s11_e(e11[l*16 +: 16]), .s13_byte(byte13[l*8 +: 8])
    );
  end

  // ---------------- reductions across lanes: binary trees ----------------
  // The sums are one stage each (alumacc makes each tree one carry-save adder). The max tree
  // compares 48-bit logits, one comparator per level, so at 32 lanes it would be the unit's
  // deepest path: its top levels run in stage 5 instead, beside the running-max compare, over
  // MXP partial maxima registered at the end of stage 4. Max is associative, so the chunk max
  // is the same whatever the split; the timing is unchanged.
  localparam logic [47:0] Z_NONE = 48'h8000_0000_0000;   // below every logit (|z| < 2^47)
  localparam int MXP = (LANES < 4) ? LANES : 4;          // partial maxima (a power of two or LANES)
  // node i's children are 2i and 2i+1; the leaves LANES .. 2*LANES-1 are the lanes. Nodes
  // MXP .. 2*MXP-1 (every leaf has exactly one of them on its path to the root) are the partials.
  logic [19:0] sq_tree [1:2*LANES-1];
  logic [19:0] e_tree  [1:2*LANES-1];
  logic [47:0] mx_tree [MXP:2*LANES-1];   // stage 4: leaves up to the partials
  logic [47:0] mx_top  [1:2*MXP-1];       // stage 5: the registered partials up to the root
  logic [MXP*48-1:0] pmax5;               // the partial maxima, registered
  always_comb begin
    for (int l = 0; l < LANES; l++) begin
      sq_tree[LANES + l] = 20'(xsq3[l*15 +: 15]);
      e_tree[LANES + l]  = 20'(e11[l*16 +: 16]);
      mx_tree[LANES + l] = vis4[l] ? z4[l*48 +: 48] : Z_NONE;
    end
    for (int i = LANES - 1; i >= 1; i--) begin
      sq_tree[i] = sq_tree[2*i] + sq_tree[2*i+1];
      e_tree[i]  = e_tree[2*i] + e_tree[2*i+1];
    end
    for (int i = LANES - 1; i >= MXP; i--)
      mx_tree[i] = ($signed(mx_tree[2*i]) > $signed(mx_tree[2*i+1])) ? mx_tree[2*i] : mx_tree[2*i+1];
    for (int i = 0; i < MXP; i++) mx_top[MXP + i] = pmax5[i*48 +: 48];
    for (int i = MXP - 1; i >= 1; i--)
      mx_top[i] = ($signed(mx_top[2*i]) > $signed(mx_top[2*i+1])) ? mx_top[2*i] : mx_top[2*i+1];
  end
  logic [19:0] sq4, e12;           // chunk sums, registered
  always_ff @(posedge clk) begin
    sq4   <= sq_tree[1];
    e12   <= e_tree[1];
    for (int i = 0; i < MXP; i++) pmax5[i*48 +: 48] <= mx_tree[MXP + i];
  end
  wire [47:0] cmax5 = mx_top[1];   // chunk max (stage 5)
  wire        rms_red4  = t_valid[4] && (op == accel_pkg::OP_RMS) && (t_kind[4] == K_RED1);
  wire        smax_max5 = t_valid[5] && (op == accel_pkg::OP_SMAX) && (t_kind[5] == K_RED1);
  wire        smax_sum12 = t_valid[12] && (op == accel_pkg::OP_SMAX) && (t_kind[12] == K_RED2);
  wire [31:0] acc_rms = (t_first[4] ? 32'd0 : acc) + 32'(sq4);
  wire [31:0] acc_exp = (t_first[12] ? 32'd0 : acc) + 32'(e12);

  // ---------------- write port (stage 13) ----------------
  always_comb begin
    a_we    = t_valid[SW] && (t_kind[SW] == K_OUT);   // reduction beats write nothing
    a_waddr = t_rowd[SW];
    a_wbe   = '0;
    for (int l = 0; l < LANES; l++) a_wbe[32'(t_ch[SW]) * LANES + l] = 1'b1;
    a_wdata = {CH{byte13}};
  end

  // ---------------- sequencer, reductions and divider ----------------
  task automatic begin_pass();
    blk <= '0; ch <= '0; boff <= '0; hb <= '0; hoff <= '0; col0 <= '0;
  endtask

  task automatic start_div(input logic [47:0] num, input logic [31:0] den);
    dv_rem <= 32'(num[47:32]); dv_bits <= num[31:0]; dv_den <= den; dv_q <= '0; dv_i <= '0;
    dstate <= D_DIV;
  endtask

  always_ff @(posedge clk or negedge rst_n) begin
    if (!rst_n) begin
      state <= V_IDLE; busy <= 1'b0; done <= 1'b0; kind <= K_OUT; ph <= 1'b0;
      fill_addr <= '0; fill_j <= '0; fill_sec <= 1'b0; tw_en <= 1'b0;
      r <= '0; red_next <= '0; out_next <= '0; blk <= '0; ch <= '0; boff <= '0; hb <= '0;
      hoff <= '0; trow <= '0; col0 <= '0; dcnt <= '0;
      mx <= '0; acc <= '0; pend_valid <= 1'b0; pend_acc <= '0; pend_mx <= '0;
      res_valid <= 1'b0; res_k <= '0; res_mx <= '0; oc_k <= '0; oc_mx <= '0;
      dstate <= D_IDLE; dv_rem <= '0; dv_den <= '0; dv_bits <= '0; dv_q <= '0; dv_i <= '0;
      dv_second <= 1'b0; dv_mx <= '0; sq_op <= '0; sq_res <= '0; sq_one <= '0; sq_i <= '0;
    end else begin
      done <= 1'b0;
      tw_en <= (state == V_FILL);

      // ---- reductions (the beats in flight) ----
      if (rms_red4) begin
        acc <= acc_rms;
        if (t_last[4]) begin pend_acc <= acc_rms; pend_mx <= '0; end
      end
      if (smax_max5)
        mx <= (t_first[5] || $signed(cmax5) > $signed(mx)) ? cmax5 : mx;
      if (smax_sum12) begin
        acc <= acc_exp;
        if (t_last[12]) begin pend_acc <= acc_exp; pend_mx <= t_mx[12]; end
      end

      // ---- divider: takes a pending row when its result slot is free ----
      case (dstate)
        D_IDLE: if (pend_valid && !res_valid) begin
          pend_valid <= 1'b0;
          dv_mx <= pend_mx; dv_second <= 1'b0;
          // RMS: mean square in Q16, (ss << 16) / n; SMAX: 127 * 2^24 / sum. Both quotients
          // are below 2^31, so the top 16 numerator bits start as the remainder.
          if (op == accel_pkg::OP_RMS) start_div({pend_acc[31:0], 16'd0}, 32'(blocks) * N);
          else start_div(48'd127 << 24, pend_acc);
        end
        D_DIV: begin
          dv_rem <= dv_rb; dv_bits <= dv_bits << 2; dv_q <= dv_qn[29:0]; dv_i <= dv_i + 4'd1;
          if (dv_i == 4'd15) begin
            if (op == accel_pkg::OP_RMS && !dv_second) begin
              sq_op <= dv_res; sq_res <= '0; sq_one <= 32'h4000_0000; sq_i <= '0;
              dstate <= D_SQRT;
            end else begin   // both quotients are <= 2^30 (RMS) / < 2^31 (SMAX)
              res_k <= dv_res[30:0]; res_mx <= dv_mx; res_valid <= 1'b1; dstate <= D_IDLE;
            end
          end
        end
        D_SQRT: begin
          sq_op <= sq_opb; sq_res <= sq_resb; sq_one <= sq_oneb; sq_i <= sq_i + 3'd1;
          if (sq_i == 3'd7) begin
            start_div(48'h0000_4000_0000, (sq_resb == 32'd0) ? 32'd1 : sq_resb);
            dv_second <= 1'b1;
          end
        end
        default: dstate <= D_IDLE;
      endcase
      // a row's last reduction beat hands its result over (after the divider took the last one)
      if ((rms_red4 && t_last[4]) || (smax_sum12 && t_last[12])) pend_valid <= 1'b1;

      // ---- issue sequencer ----
      case (state)
        V_IDLE: if (start) begin
          busy <= 1'b1; red_next <= '0; out_next <= '0; ph <= 1'b0; fill_j <= '0;
          fill_sec <= !((op == accel_pkg::OP_RMS) || flags[0]);
          fill_addr <= (op == accel_pkg::OP_RMS) ? src1 : flags[0] ? cs0 : cs1;
          state <= has_tbl ? V_FILL : V_WAIT;
        end
        V_FILL: begin   // one W row per cycle; it is written into table_sram a cycle later
          fill_addr <= fill_addr + 16'd1; fill_j <= fill_j + 9'd1;
          if (fill_end) begin
            fill_j <= '0;
            if (!fill_sec && flags[1]) begin fill_sec <= 1'b1; fill_addr <= cs1; end
            else state <= V_WAIT;   // the last row is written in the V_WAIT cycle
          end
        end
        V_WAIT: begin
          if (!reduce_op) begin
            kind <= K_OUT; r <= '0; trow <= src1; begin_pass(); state <= V_ISSUE;
          end else if (want_red) begin
            kind <= K_RED1; r <= red_next; red_next <= red_next + 16'd1;
            begin_pass(); state <= V_ISSUE;
          end else if (res_valid) begin
            kind <= K_OUT; r <= out_next; out_next <= out_next + 16'd1;
            res_valid <= 1'b0; oc_k <= res_k; oc_mx <= res_mx;
            begin_pass(); state <= V_ISSUE;
          end
        end
        V_ISSUE: if (two_phase && !ph) ph <= 1'b1;
        else begin
          ph <= 1'b0;
          col0 <= col0 + 16'(LANES);
          if (last_ch) begin
            ch <= '0; blk <= blk + 8'd1; boff <= boff + rows;
            if (hb == src2 - 16'd1) begin hb <= '0; hoff <= '0; end
            else begin hb <= hb + 16'd1; hoff <= hoff + (tr2 ? 16'd2 : 16'd1); end
            if (last_blk) begin
              begin_pass();
              if (item_end) begin
                state <= last_item ? V_DRAIN : V_WAIT; dcnt <= '0;
              end else if (reduce_op) kind <= K_RED2;   // SMAX: sum pass after the max pass
              else begin r <= r + 16'd1; trow <= trow + bph_tr; end
            end
          end else ch <= ch + 8'd1;
        end
        V_DRAIN: begin   // the last beat is written in its stage SW
          dcnt <= dcnt + 4'd1;
          if (dcnt == 4'(SW - 1)) begin state <= V_IDLE; busy <= 1'b0; done <= 1'b1; end
        end
        default: state <= V_IDLE;
      endcase
    end
  end

`ifndef SYNTHESIS
  // a reduction result is never overwritten before the divider took it
  always_ff @(posedge clk)
    if ((rms_red4 && t_last[4]) || (smax_sum12 && t_last[12]))
      assert (!pend_valid || (dstate == D_IDLE && !res_valid));
  initial assert (N % LANES == 0 && LANES >= 1);
`endif
endmodule
