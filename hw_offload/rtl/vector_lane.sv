// One lane of the vector unit: the per-element datapath of every vector op, pipelined.
//
// A beat issued in cycle t (addresses on the memory ports) is in stage k during cycle t+k.
// Registers named sK_* hold a beat's values during stage K: the memories' read-data registers
// (in accel_top) are stage 1, and stage k's logic fills the s(k+1)_* registers. Every stage
// holds at most one multiplier (or one 64-bit round-and-saturate), so the unit's longest path is
// about that of one multiply, not a chain of them. Widths are the operands' real ones (ISA.md,
// "Vector unit datapath widths"); only ROPE's product with mult0 can pass 2^63, and it wraps
// modulo 2^64 like the golden model's int64.
//
// Multipliers are shared between the ops (one op runs at a time; the operands are chosen,
// not the products): stage 2 has two 32 x 17 (column scales, or SMAX's score * mult0), stage 4
// a 33 x 17 and a 33 x 16 (ROPE x_p*sin, RMS x*g * inv), stage 9 a 51 x 17 (SWIGLU * mult1,
// ROPE and RMS * mult0), and SWIGLU / SMAX one each in stages 7, 8 and 11.
// Products are written without casts on their operands: SystemVerilog extends the operands to
// the result's width, and Yosys keeps the multiplier at the operands' own widths. Verilator's
// WIDTHEXPAND warning for exactly that is off in this file.
//
// The lane handles element e = ch*LANES + lane of its column block. The reductions across lanes
// (RMS sum of squares, softmax max and sum of exp) live in vector_unit.sv, which reads the
// lane's s3_xsq, s4_z/s4_vis and s11_e and feeds back the row constants (K at stage 4, the row
// max at stage 5, R at stage 11).
/* verilator lint_off WIDTHEXPAND */
module vector_lane
#(
    parameter int N     = 16,
    parameter int LANES = N
) (
    input  logic                clk,
    // this lane's index (a constant per instance; a port, not a parameter, so that synthesis
    // maps one lane and instantiates it LANES times, as the array does with its PE)
    input  logic [7:0]          lane,
    input  logic [7:0]          op,
    input  logic [1:0]          flags,
    input  logic [7:0]          aux,       // ROPE: rotation width
    input  logic [15:0]         mult0,
    input  logic [5:0]          shift0,
    input  logic [15:0]         mult1,
    input  logic [5:0]          shift1,
    // stage 1: whole rows from the memories' read-data registers, and the beat's position
    input  logic [N*8-1:0]      a_row,     // A: RMS x, RESADD residual
    input  logic [N*32-1:0]     c0_row,    // ACC: the first ACC operand
    input  logic [N*32-1:0]     c1_row,    // ACC: SWIGLU's up operand (read a cycle earlier)
    input  logic [N*8-1:0]      w0_row,    // W: ROPE table row 0
    input  logic [N*8-1:0]      w1_row,    // W: ROPE table row 1 (read a cycle earlier)
    input  logic [4*N*8-1:0]    tbl_row,   // the block's tables: RMS gain in slot 0 (N bytes);
                                           // cs0 in slots 0-1, cs1 in slots 2-3
    input  logic [7:0]          s1_ch,     // chunk of the block this beat covers
    input  logic [15:0]         s1_col0,   // column of the chunk's lane 0 (SMAX causal mask)
    input  logic [16:0]         s1_vis_lim,// SMAX: last visible column, row + q_off
    // row constants, each at the stage that uses it
    input  logic [30:0]         s4_inv,    // RMS: 2^30 / rms
    input  logic signed [47:0]  s5_mx,     // SMAX: the row max of the Q10 logits
    input  logic [30:0]         s11_r,     // SMAX: 127 * 2^24 / sum
    // to the reductions
    output logic [14:0]         s3_xsq,    // RMS: x^2
    output logic signed [47:0]  s4_z,      // SMAX: Q10 logit
    output logic                s4_vis,    // SMAX: column visible
    output logic [15:0]         s11_e,     // SMAX: exp (0 where hidden)
    // stage 13: the result byte, written to A
    output logic [7:0]          s13_byte
);
  localparam int EW = $clog2(N);

  // ---------------- stage 1: pick this lane's operands out of the rows ----------------
  logic [EW-1:0] e, partner;
  logic [EW-2:0] pair;           // ROPE table entry: < N/2 on the lanes that use it
  logic [EW:0]   half;
  logic          lo;
  always_comb begin
    e       = EW'(32'(s1_ch) * LANES + 32'(lane));
    half    = (EW + 1)'(aux >> 1);
    lo      = (EW + 1)'(e) < half;
    // lanes at or past the rotation width produce 0, so their partner index may wrap
    partner = lo ? EW'((EW + 1)'(e) + half) : EW'((EW + 1)'(e) - half);
    pair    = (EW - 1)'(lo ? e : partner);
  end
  wire [2*N*8-1:0] tbl_rope = {w1_row, w0_row};         // entry i = {sin, cos} at byte 4i
  wire [2*N*8-1:0] tbl_cs0  = tbl_row[0 +: 2*N*8];      // column c's multiplier at byte 2c
  wire [2*N*8-1:0] tbl_cs1  = tbl_row[2*N*8 +: 2*N*8];

  logic signed [7:0]  s2_xa, s2_g;
  logic signed [31:0] s2_xc0, s2_xc1, s2_xp;
  logic signed [15:0] s2_cos, s2_sin;
  logic [15:0]        s2_m0c, s2_mpc, s2_m1c;
  logic               s2_vis, s2_act, s2_lo;
  always_ff @(posedge clk) begin
    s2_xa  <= a_row[32'(e)*8 +: 8];
    s2_g   <= tbl_row[32'(e)*8 +: 8];
    s2_xc0 <= c0_row[32'(e)*32 +: 32];
    s2_xc1 <= c1_row[32'(e)*32 +: 32];
    s2_xp  <= c0_row[32'(partner)*32 +: 32];
    s2_cos <= tbl_rope[32'(pair)*32 +: 16];
    s2_sin <= tbl_rope[32'(pair)*32 + 16 +: 16];
    s2_m0c <= tbl_cs0[32'(e)*16 +: 16];
    s2_mpc <= tbl_cs0[32'(partner)*16 +: 16];
    s2_m1c <= tbl_cs1[32'(e)*16 +: 16];
    s2_vis <= (17'(s1_col0) + 17'(lane)) <= s1_vis_lim;
    s2_act <= (8'(e) < aux);
    s2_lo  <= lo;
  end

  // ---------------- stage 2: column-scale products, RMS and RESADD small products ----------------
  logic signed [47:0] s3_p0, s3_pq;   // first ACC operand; ROPE partner or SWIGLU up (scaled)
  logic signed [31:0] s3_xc0, s3_xc1, s3_xp;
  logic signed [15:0] s3_xg, s3_cos, s3_sin;
  logic signed [24:0] s3_am;
  logic               s3_vis, s3_act, s3_lo;
  always_ff @(posedge clk) begin
    logic signed [16:0] m0, mq;
    logic signed [31:0] xq;
    // SMAX has no column scale: its first product is the score times mult0
    m0 = $signed({1'b0, (op == accel_pkg::OP_SMAX) ? mult0 : s2_m0c});
    s3_p0  <= s2_xc0 * m0;
    // one multiplier for ROPE's partner and SWIGLU's up operand, each with its column scale
    xq = (op == accel_pkg::OP_ROPE) ? s2_xp : s2_xc1;
    mq = $signed({1'b0, (op == accel_pkg::OP_ROPE) ? s2_mpc : s2_m1c});
    s3_pq  <= xq * mq;
    s3_xg  <= s2_xa * s2_g;
    s3_xsq <= s2_xa * s2_xa;                                // <= 2^14: 15 bits
    s3_am  <= s2_xa * $signed({1'b0, mult0});
    s3_xc0 <= s2_xc0; s3_xc1 <= s2_xc1; s3_xp <= s2_xp;
    s3_cos <= s2_cos; s3_sin <= s2_sin;
    s3_vis <= s2_vis; s3_act <= s2_act; s3_lo <= s2_lo;
  end

  // ---------------- stage 3: round the column scales; SMAX's Q10 logit ----------------
  logic signed [32:0] s4_x0, s4_xp, s4_x1;
  logic signed [15:0] s4_xg, s4_cos, s4_sin;
  logic signed [24:0] s4_am;
  logic               s4_act, s4_lo;
  always_ff @(posedge clk) begin
    s4_x0 <= flags[0] ? accel_pkg::colscale_round(s3_p0) : 33'(s3_xc0);
    s4_xp <= flags[0] ? accel_pkg::colscale_round(s3_pq) : 33'(s3_xp);   // ROPE
    s4_x1 <= flags[1] ? accel_pkg::colscale_round(s3_pq) : 33'(s3_xc1);  // SWIGLU
    s4_z  <= 48'(accel_pkg::rshift_round50(50'(s3_p0), shift0));   // |z| < 2^47
    s4_xg <= s3_xg; s4_am <= s3_am; s4_cos <= s3_cos; s4_sin <= s3_sin;
    s4_vis <= s3_vis; s4_act <= s3_act; s4_lo <= s3_lo;
  end

  // ---------------- stage 4: the op's main product ----------------
  logic signed [49:0] s5_m1;     // REQ x*mult0, ROPE x*cos, SWIGLU gate*mult0, RESADD b*mult1
  logic signed [48:0] s5_m2;     // ROPE partner*sin, RMS x*g*inv (|.| <= 2^44)
  logic signed [32:0] s5_x1;
  logic signed [24:0] s5_am;
  logic signed [47:0] s5_z;
  logic               s5_vis, s5_act, s5_lo;
  always_ff @(posedge clk) begin
    logic signed [16:0] b;
    logic signed [32:0] m2a;
    logic signed [15:0] m2b;
    case (op)
      accel_pkg::OP_ROPE:   b = 17'(s4_cos);
      accel_pkg::OP_RESADD: b = $signed({1'b0, mult1});
      default:   b = $signed({1'b0, mult0});
    endcase
    s5_m1 <= s4_x0 * b;
    // one 33 x 16 multiplier for both ops: the operands are chosen, not the products
    m2a = (op == accel_pkg::OP_RMS) ? $signed({2'b0, s4_inv}) : s4_xp;
    m2b = (op == accel_pkg::OP_RMS) ? s4_xg : s4_sin;
    s5_m2 <= m2a * m2b;
    s5_x1 <= s4_x1; s5_am <= s4_am; s5_z <= s4_z;
    s5_vis <= s4_vis; s5_act <= s4_act; s5_lo <= s4_lo;
  end

  // ---------------- stage 5: combine; SMAX's distance to the row max ----------------
  logic signed [63:0] s6_v;
  logic signed [21:0] s6_g;      // SWIGLU: clamped Q10 gate
  logic [48:0]        s6_nd;     // SMAX: mx - z
  logic signed [32:0] s6_x1;
  logic               s6_vis, s6_act;
  always_ff @(posedge clk) begin
    logic signed [49:0] g, bt;
    g  = accel_pkg::rshift_round50(s5_m1, shift0);
    bt = accel_pkg::rshift_round50(s5_m1, shift1);
    case (op)
      accel_pkg::OP_RMS:    s6_v <= 64'(s5_m2);
      accel_pkg::OP_ROPE:   s6_v <= s5_lo ? 64'(s5_m1) - 64'(s5_m2) : 64'(s5_m1) + 64'(s5_m2);
      accel_pkg::OP_RESADD: s6_v <= 64'(bt) + 64'(s5_am);
      default:   s6_v <= 64'(s5_m1);
    endcase
    if (g > 50'(accel_pkg::SILU_CLAMP)) s6_g <= 22'(accel_pkg::SILU_CLAMP);
    else if (g < -50'(accel_pkg::SILU_CLAMP)) s6_g <= -22'(accel_pkg::SILU_CLAMP);
    else s6_g <= g[21:0];
    s6_nd <= 49'(50'(s5_mx) - 50'(s5_z));
    s6_x1 <= s5_x1; s6_vis <= s5_vis; s6_act <= s5_act;
  end

  // ---------------- stage 6: sigmoid; i-exp quotient ----------------
  logic signed [63:0] s7_v;
  logic signed [21:0] s7_g;
  logic [15:0]        s7_sig;
  logic [14:0]        s7_nd;
  logic [4:0]         s7_q;
  logic               s7_big, s7_vis, s7_act;
  logic signed [32:0] s7_x1;
  always_ff @(posedge clk) begin
    s7_v   <= s6_v;
    s7_g   <= s6_g;
    s7_sig <= accel_pkg::sigmoid_q15(s6_g);
    s7_big <= s6_nd >= 49'(accel_pkg::EXP_ND_MAX);
    s7_nd  <= s6_nd[14:0];
    s7_q   <= accel_pkg::iexp_quotient(s6_nd[14:0]);
    s7_x1 <= s6_x1; s7_vis <= s6_vis; s7_act <= s6_act;
  end

  // ---------------- stage 7: SiLU; i-exp remainder ----------------
  logic signed [63:0] s8_v;
  logic signed [21:0] s8_silu;   // |silu| <= 2^20
  logic [10:0]        s8_t;
  logic [4:0]         s8_q;
  logic               s8_big, s8_vis, s8_act;
  logic signed [32:0] s8_x1;
  always_ff @(posedge clk) begin
    logic signed [38:0] gs;
    gs = s7_g * $signed({1'b0, s7_sig});
    s8_silu <= 22'((gs + 39'sd16384) >>> 15);
    s8_t <= accel_pkg::iexp_t(s7_nd, s7_q);
    s8_v <= s7_v; s8_q <= s7_q; s8_big <= s7_big;
    s8_x1 <= s7_x1; s8_vis <= s7_vis; s8_act <= s7_act;
  end

  // ---------------- stage 8: SiLU * up; i-exp square ----------------
  logic signed [63:0] s9_v;
  logic signed [44:0] s9_pr;     // round(silu * up / 2^10): |.| <= 2^42
  logic [21:0]        s9_tt;
  logic [4:0]         s9_q;
  logic               s9_big, s9_vis, s9_act;
  always_ff @(posedge clk) begin
    logic signed [54:0] su;
    su = s8_silu * s8_x1;
    s9_pr <= 45'((su + 55'sd512) >>> 10);
    s9_tt <= s8_t * s8_t;
    s9_v <= s8_v; s9_q <= s8_q; s9_big <= s8_big; s9_vis <= s8_vis; s9_act <= s8_act;
  end

  // ---------------- stage 9: SWIGLU * mult1, ROPE / RMS * mult0; i-exp polynomial ----------------
  logic signed [63:0] s10_v;
  logic [15:0]        s10_e0;
  logic [4:0]         s10_q;
  logic               s10_big, s10_vis, s10_act;
  always_ff @(posedge clk) begin
    logic signed [50:0] pa;
    logic signed [16:0] pb;
    // One 51 x 17 multiplier for the three ops (ROPE / RMS's product used to have its own in
    // stage 6; their value rides along in s7_v .. s9_v until here). ROPE's y and RMS's x*g*inv
    // are below 2^50 in magnitude, so 51 bits of s9_v carry them; SWIGLU's s9_pr is sign-extended.
    pa = (op == accel_pkg::OP_SWIGLU) ? {{6{s9_pr[44]}}, s9_pr} : s9_v[50:0];
    pb = {1'b0, (op == accel_pkg::OP_SWIGLU) ? mult1 : mult0};
    // the golden model's int64 product, wrapped modulo 2^64 (only reachable with extreme scales)
    s10_v  <= (op == accel_pkg::OP_SWIGLU || op == accel_pkg::OP_ROPE || op == accel_pkg::OP_RMS)
              ? pa * pb : s9_v;
    s10_e0 <= accel_pkg::iexp_poly(s9_tt);
    s10_q <= s9_q; s10_big <= s9_big; s10_vis <= s9_vis; s10_act <= s9_act;
  end

  // ---------------- stage 10: i-exp shift ----------------
  logic signed [63:0] s11_v;
  logic               s11_vis, s11_act;
  always_ff @(posedge clk) begin
    s11_e <= (s10_big || !s10_vis) ? 16'd0 : s10_e0 >> s10_q;
    s11_v <= s10_v; s11_vis <= s10_vis; s11_act <= s10_act;
  end

  // ---------------- stage 11: softmax e * R ----------------
  logic signed [63:0] s12_v;
  logic [46:0]        s12_er;
  logic               s12_vis, s12_act;
  always_ff @(posedge clk) begin
    s12_er <= s11_e * s11_r;
    s12_v <= s11_v; s12_vis <= s11_vis; s12_act <= s11_act;
  end

  // ---------------- stage 12: round and saturate to int8 ----------------
  always_ff @(posedge clk) begin
    logic [46:0] p;
    p = (s12_er + 47'(1 << 23)) >> 24;
    case (op)
      accel_pkg::OP_SMAX:   s13_byte <= !s12_vis ? 8'd0 : (p > 47'd127) ? 8'd127 : p[7:0];
      accel_pkg::OP_ROPE:   s13_byte <= s12_act ? accel_pkg::rshift_round_sat8(s12_v, shift0) : 8'd0;
      accel_pkg::OP_SWIGLU: s13_byte <= accel_pkg::rshift_round_sat8(s12_v, shift1);
      default:   s13_byte <= accel_pkg::rshift_round_sat8(s12_v, shift0);
    endcase
  end
endmodule
/* verilator lint_on WIDTHEXPAND */
