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

  // Fixed-point constants of the vector unit (Q10 logits, Q15 exp/sigmoid).
  localparam longint LN2_Q10  = 710;     // round(ln2 * 2^10)
  localparam longint EXP_B    = 1385;    // round(1.353 * 2^10), I-BERT i-exp polynomial
  localparam longint EXP_A    = 367;     // round(0.3585 * 2^10)
  localparam longint EXP_C    = 11272;   // round(0.344 * 2^15)
  localparam longint SIG_KNEE = 4096;    // 4.0 in Q10: sigmoid(x) = 1 - (min(x,4)-4)^2/32
  localparam longint SILU_CLAMP = 1048576;  // |gate| clamp, 1024.0 in Q10

  // Vector-op flags: per-column scaling of accumulator operands (per-output-channel weights).
  localparam logic [7:0] COLSCALE_A = 8'h01;  // first ACC operand, table at cs0
  localparam logic [7:0] COLSCALE_B = 8'h02;  // SWIGLU's second ACC operand, table at cs1
  localparam logic [5:0] CS_SHIFT   = 6'd15;  // a column multiplier of 2^15 is 1.0

  // Round half up, arithmetic shift right. s = 0 leaves v unchanged.
  function automatic longint rshift_round(input longint v, input logic [5:0] s);
    if (s == 6'd0) return v;
    return (v + (64'sd1 <<< (s - 6'd1))) >>> s;
  endfunction

  function automatic logic [7:0] sat8(input longint v);
    if (v > 64'sd127) return 8'h7F;
    if (v < -64'sd128) return 8'h80;
    return v[7:0];
  endfunction

  // int8 = sat8(round(v * m / 2^s)); m is an unsigned 16-bit multiplier.
  function automatic logic [7:0] requant(input longint v, input logic [15:0] m, input logic [5:0] s);
    return sat8(rshift_round(v * longint'({48'd0, m}), s));
  endfunction

  // One column of a GEMM with per-channel weight scales, brought to the common scale.
  function automatic longint colscale(input longint v, input logic [15:0] m);
    return rshift_round(v * longint'({48'd0, m}), CS_SHIFT);
  endfunction

  // exp(d / 2^10) in Q15 for d <= 0: d = -q*ln2 + r, exp(r) by a 2nd-order polynomial, >> q.
  function automatic longint iexp_q15(input longint d);
    longint nd, q, r, t, e0;
    nd = -d;
    q = nd / LN2_Q10;
    r = d + q * LN2_Q10;
    t = r + EXP_B;
    e0 = ((t * t * EXP_A) >>> 15) + EXP_C;
    if (q > 30) return 64'sd0;
    return e0 >>> q[4:0];
  endfunction

  // sigmoid(x / 2^10) in Q15, shift-only piecewise quadratic: 1 - (min(|x|,4)-4)^2 / 32.
  function automatic longint sigmoid_q15(input longint x);
    longint a, t, h;
    a = (x < 0) ? -x : x;
    if (a > SIG_KNEE) a = SIG_KNEE;
    t = a - SIG_KNEE;
    h = 64'sd32768 - ((t * t) >>> 10);
    return (x < 0) ? 64'sd32768 - h : h;
  endfunction

endpackage
