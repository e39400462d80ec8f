// ISA constants and the bit-exact integer arithmetic shared by every unit.
// hw_offload/int_arith.py is the numpy twin of each function here; ISA.md documents both.
package accel_pkg;

  // ---- opcodes (instruction word 0, bits [7:0]) ----
  localparam logic [7:0] OP_LOAD   = 8'h01;
  localparam logic [7:0] OP_STORE  = 8'h02;
  localparam logic [7:0] OP_HALT   = 8'h0F;
  localparam logic [7:0] OP_GEMM   = 8'h10;
  localparam logic [7:0] OP_REQ    = 8'h20;
  localparam logic [7:0] OP_RMS    = 8'h21;
  localparam logic [7:0] OP_ROPE   = 8'h22;
  localparam logic [7:0] OP_SMAX   = 8'h23;
  localparam logic [7:0] OP_SWIGLU = 8'h24;
  localparam logic [7:0] OP_RESADD = 8'h25;

  // ---- error codes (register ERR_CODE) ----
  localparam logic [7:0] ERR_NONE   = 8'd0;
  localparam logic [7:0] ERR_OPCODE = 8'd1;  // unknown opcode
  localparam logic [7:0] ERR_FIELD  = 8'd2;  // reserved bit set, zero size, bad shift/flags/head_dim
  localparam logic [7:0] ERR_RANGE  = 8'd3;  // SRAM or DRAM range out of bounds, DRAM misaligned
  localparam logic [7:0] ERR_PC     = 8'd4;  // pc ran past the end of instruction memory

  // ---- host memory map and register map (ISA.md "Host interface", "Registers") ----
  // hw_offload/isa.py and sim/harness.cpp repeat these; tests/test_hw_constants.py holds them
  // to the values here.
  localparam logic [31:0] IMEM_BASE  = 32'h8000_0000;  // host byte address of instruction 0
  localparam int          INSN_BYTES = 32;              // one 256-bit instruction
  localparam logic [7:0] REG_CTRL       = 8'h00;  // write bit 0: start at START_PC
  localparam logic [7:0] REG_STATUS     = 8'h01;  // {error, done, running}
  localparam logic [7:0] REG_ERR_CODE   = 8'h02;
  localparam logic [7:0] REG_PC         = 8'h03;
  localparam logic [7:0] REG_START_PC   = 8'h04;
  localparam logic [7:0] REG_ERR_PC     = 8'h05;
  localparam logic [7:0] REG_N          = 8'h06;  // sizes of this build, read-only
  localparam logic [7:0] REG_A_ROWS     = 8'h07;
  localparam logic [7:0] REG_W_ROWS     = 8'h08;
  localparam logic [7:0] REG_ACC_ROWS   = 8'h09;
  localparam logic [7:0] REG_DRAM_BYTES = 8'h0A;
  localparam logic [7:0] REG_IMEM_DEPTH = 8'h0B;
  // 64-bit counters: low word at the register, high word at the next one
  localparam logic [7:0] REG_CNT_CYCLES       = 8'h10;
  localparam logic [7:0] REG_CNT_ARRAY_BUSY   = 8'h12;
  localparam logic [7:0] REG_CNT_VECTOR_BUSY  = 8'h14;
  localparam logic [7:0] REG_CNT_DMA_BUSY     = 8'h16;
  localparam logic [7:0] REG_CNT_STALL        = 8'h18;
  localparam logic [7:0] REG_CNT_BYTES_IN     = 8'h1A;
  localparam logic [7:0] REG_CNT_BYTES_OUT    = 8'h1C;
  localparam logic [7:0] REG_CNT_INSTRUCTIONS = 8'h1E;
  localparam logic [7:0] REG_CNT_OVERLAP      = 8'h20;  // cycles with two or three units busy
  localparam logic [7:0] REG_CNT_ALL_BUSY     = 8'h22;  // cycles with all three busy

  // ---- instruction format (ISA.md "Instruction encoding") ----
  // One 256-bit instruction = eight little-endian 32-bit words; word w holds bits [32w+31:32w].
  // A packed struct lists its members from the most significant bit down, so word 7 comes
  // first. isa.py's INSN_FIELDS gives the same layout (tests/test_hw_constants.py holds it to
  // this struct); every rsv* field must be 0.
  typedef struct packed {
    logic [15:0] cs1;     // w7[31:16] W row of SWIGLU's up-operand column-scale table
    logic [15:0] cs0;     // w7[15:0]  W row of the first ACC operand's column-scale table
    logic [7:0]  rsv6;    // w6[31:24]
    logic [7:0]  shift1;  // w6[23:16]
    logic [15:0] mult1;   // w6[15:0]
    logic [7:0]  rsv5;    // w5[31:24]
    logic [7:0]  shift0;  // w5[23:16]
    logic [15:0] mult0;   // w5[15:0]
    logic [31:0] dram;    // w4        DRAM byte address
    logic [15:0] src2;    // w3[31:16]
    logic [15:0] src1;    // w3[15:0]
    logic [15:0] src0;    // w2[31:16]
    logic [15:0] dst;     // w2[15:0]
    logic [7:0]  aux;     // w1[31:24]
    logic [7:0]  blocks;  // w1[23:16]
    logic [15:0] rows;    // w1[15:0]
    logic [15:0] rsv0;    // w0[31:16]
    logic [7:0]  flags;   // w0[15:8]
    logic [7:0]  op;      // w0[7:0]
  } insn_t;

  // ---- LOAD/STORE memory selector (flags[1:0]) ----
  localparam logic [1:0] MEM_A   = 2'd0;  // activation SRAM
  localparam logic [1:0] MEM_W   = 2'd1;  // weight SRAM (LOAD only)
  localparam logic [1:0] MEM_ACC = 2'd2;  // accumulator SRAM, 4 DRAM lines per row

  // ---- GEMM flags ----
  localparam logic [7:0] GEMM_ACCUMULATE  = 8'h01;  // add to the ACC rows instead of overwriting
  localparam logic [7:0] GEMM_B_FROM_A    = 8'h02;  // B operand read from the activation SRAM
  localparam logic [7:0] GEMM_TRANSPOSE_B = 8'h04;  // B rows feed PE columns
  localparam logic [7:0] GEMM_FLAGS       = GEMM_ACCUMULATE | GEMM_B_FROM_A | GEMM_TRANSPOSE_B;

  // ---- overlap: what an instruction reads and writes (hw_offload/footprint.py; ISA.md "Overlap") ----
  // Units, as bit indices of the controller's per-unit vectors.
  localparam int UNIT_DMA  = 0;
  localparam int UNIT_GEMM = 1;
  localparam int UNIT_VEC  = 2;
  // Banked SRAMs (ISA.md "Memories"): every SRAM is SRAM_BANKS equal banks, bank = the top two
  // bits of the row address, each a synchronous SRAM with one read and one write port.
  localparam int SRAM_BANKS = 4;
  // Per memory m (MEM_A = 0, MEM_W = 1, MEM_ACC = 2) one bounding row range [lo, hi) of the
  // reads and one of the writes, bounds 17 bits wide (hi can be 65536) at bits [17m +: 17];
  // rd_v[m] / wr_v[m] say whether the range exists (every existing range is non-empty). The
  // bank ports those ranges claim: rd_bank / wr_bank bit 4m + b = bank b of memory m (two
  // instructions in flight on different units never claim the same bank port).
  localparam int FP_BITS = 12 + 12 + 3 + 3 + 4 * 51;
  typedef struct packed {
    logic [11:0] rd_bank;
    logic [11:0] wr_bank;
    logic [2:0]  rd_v;
    logic [2:0]  wr_v;
    logic [50:0] rd_lo;
    logic [50:0] rd_hi;
    logic [50:0] wr_lo;
    logic [50:0] wr_hi;
  } footprint_t;

  // Fixed-point constants of the vector unit (Q10 logits, Q15 exp/sigmoid).
  localparam int LN2_Q10    = 710;      // round(ln2 * 2^10)
  localparam int EXP_B      = 1385;     // round(1.353 * 2^10), I-BERT i-exp polynomial
  localparam int EXP_A      = 367;      // round(0.3585 * 2^10)
  localparam int EXP_C      = 11272;    // round(0.344 * 2^15)
  localparam int SIG_KNEE   = 4096;     // 4.0 in Q10: sigmoid(x) = 1 - (min(x,4)-4)^2/32
  localparam int SILU_CLAMP = 1048576;  // |gate| clamp, 1024.0 in Q10
  // i-exp's quotient floor(nd / 710) is only needed for nd < EXP_ND_MAX (31 * 710; beyond it the
  // result is 0). Over that range floor(nd / 710) == (nd * 11815) >> 23 exactly (checked for every
  // nd by tests/test_vector_arith.py), so the hardware multiplies by a constant instead of dividing.
  localparam int EXP_ND_MAX = 22010;
  localparam int EXP_RECIP  = 11815;    // ceil(2^23 / 710)
  localparam int EXP_RECIP_SHIFT = 23;

  // Vector-op flags: per-column scaling of accumulator operands (per-output-channel weights).
  localparam logic [7:0] COLSCALE_A = 8'h01;  // first ACC operand, table at cs0
  localparam logic [7:0] COLSCALE_B = 8'h02;  // SWIGLU's second ACC operand, table at cs1
  localparam logic [5:0] CS_SHIFT   = 6'd15;  // a column multiplier of 2^15 is 1.0

  // ---- bit-exact integer arithmetic, at the widths the operands really have ----
  // Each function is a piece of one pipeline stage of vector_unit.sv / vector_lane.sv; the
  // golden model (int_arith.py) computes the same values in int64. Widths are derived in ISA.md
  // ("Vector unit datapath widths").

  // sat8(rshift_round(v, s)): round half up, arithmetic shift right, clamp to int8. v is a 64-bit
  // two's-complement value and the rounding add wraps modulo 2^64 exactly like the golden model's
  // int64 (only ROPE with extreme column scales comes near; every other op stays below 2^62).
  function automatic logic [7:0] rshift_round_sat8(input logic signed [63:0] v, input logic [5:0] s);
    logic signed [63:0] half, t;
    half = (s == 6'd0) ? 64'sd0 : (64'sd1 <<< (s - 6'd1));
    t = (v + half) >>> s;
    if (t > 64'sd127) rshift_round_sat8 = 8'h7F;
    else if (t < -64'sd128) rshift_round_sat8 = 8'h80;
    else rshift_round_sat8 = t[7:0];
  endfunction

  // rshift_round for |v| < 2^48 (a 32-bit accumulator times a 16-bit multiplier, or a 33-bit
  // column-scaled value times one): computed in 50 bits. For s >= 49 the golden int64 result is
  // 0 (v + 2^(s-1) lies in (0, 2^s)), which a 50-bit shift would not give, so it is forced.
  function automatic logic signed [49:0] rshift_round50(input logic signed [49:0] v, input logic [5:0] s);
    logic signed [50:0] half;
    half = (s == 6'd0) ? 51'sd0 : (51'sd1 <<< (s - 6'd1));
    rshift_round50 = (s >= 6'd49) ? 50'sd0 : 50'((51'(v) + half) >>> s);
  endfunction

  // colscale: round(x * m / 2^15) of an int32 accumulator x and an unsigned 16-bit column
  // multiplier m, given the product p = x * m (|p| < 2^47); the result fits 33 bits.
  function automatic logic signed [32:0] colscale_round(input logic signed [47:0] p);
    colscale_round = 33'((49'(p) + (49'sd1 <<< (CS_SHIFT - 6'd1))) >>> CS_SHIFT);
  endfunction

  // sigmoid(x / 2^10) in Q15 for |x| <= 2^20 (SILU_CLAMP): 1 - (min(|x|,4)-4)^2 / 32, mirrored
  // for x < 0. Shift-only apart from one 13 x 13-bit square.
  function automatic logic [15:0] sigmoid_q15(input logic signed [21:0] x);
    logic [20:0] a;
    logic signed [13:0] t;
    logic signed [25:0] tt;
    logic [15:0] sq;
    a = x[21] ? 21'(-x) : x[20:0];
    t = (a > 21'(SIG_KNEE)) ? 14'sd0 : $signed(14'(a)) - 14'sd4096;
    /* verilator lint_off WIDTHEXPAND */
    tt = t * t;                               // <= 2^24: a 14 x 14-bit square, 26-bit result
    /* verilator lint_on WIDTHEXPAND */
    sq = 16'(tt >> 10);                       // <= 2^14
    sigmoid_q15 = x[21] ? sq : 16'd32768 - sq;
  endfunction

  // i-exp, exp(-nd / 2^10) in Q15 for nd >= 0, in three pieces (one per pipeline stage):
  // q = floor(nd / 710) and t = 1385 - (nd - 710 q) for nd < EXP_ND_MAX (q <= 30, t in [676, 1385]);
  // e0 = ((t*t*367) >> 15) + 11272 (<= 32756); iexp = e0 >> q, and 0 when nd >= EXP_ND_MAX.
  function automatic logic [4:0] iexp_quotient(input logic [14:0] nd);
    iexp_quotient = 5'((29'(nd) * 29'(EXP_RECIP)) >> EXP_RECIP_SHIFT);
  endfunction

  function automatic logic [10:0] iexp_t(input logic [14:0] nd, input logic [4:0] q);
    iexp_t = 11'(EXP_B) - 11'(nd - 15'(q) * 15'(LN2_Q10));   // nd - 710q is in [0, 709]
  endfunction

  function automatic logic [15:0] iexp_poly(input logic [21:0] tt);  // tt = t * t
    logic [30:0] p;
    p = 31'(tt) * 31'(EXP_A);
    iexp_poly = 16'(p >> 15) + 16'(EXP_C);
  endfunction

endpackage
