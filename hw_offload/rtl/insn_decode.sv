// Decode: every check the controller makes before it starts an instruction (ISA.md
// "Instruction encoding"), and the instruction's footprint, the rows it reads and writes in
// each SRAM and the bank ports those rows claim (ISA.md "Overlap"), for the hazard checks of
// hazard_unit.sv. Purely combinational. golden.validate and footprint.footprint are its Python
// twins; the fuzzer holds the RTL to the same error code for every malformed instruction it
// draws, and to cycle_model.run_cycles's schedule (which uses footprint.py) for legal ones.
module insn_decode #(
    parameter int N          = 16,
    parameter int A_ROWS     = 16384,
    parameter int W_ROWS     = 65536,
    parameter int ACC_ROWS   = 16384,
    parameter int DRAM_BYTES = 2097152
) (
    input  logic [255:0] insn,   // an accel_pkg::insn_t
    output logic       is_vec,   // a vector-unit opcode
    output logic [7:0] err,      // accel_pkg::ERR_NONE, or the code the controller stops with
    output logic [233:0] fp      // an accel_pkg::footprint_t; meaningful when err == ERR_NONE
);
  // Yosys 0.23 reads neither a package import nor a package type in a module header, so the
  // port is a plain vector and package names are written in full.
  /* verilator lint_off UNUSEDSIGNAL */
  accel_pkg::insn_t ir;        // the multipliers are not checked: every value is legal
  /* verilator lint_on UNUSEDSIGNAL */
  assign ir = insn;
  assign is_vec = (ir.op == accel_pkg::OP_REQ) || (ir.op == accel_pkg::OP_RMS) || (ir.op == accel_pkg::OP_ROPE) ||
                  (ir.op == accel_pkg::OP_SMAX) || (ir.op == accel_pkg::OP_SWIGLU) || (ir.op == accel_pkg::OP_RESADD);
  wire reserved_set = (ir.rsv0 != 16'd0) || (ir.rsv5 != 8'd0) || (ir.rsv6 != 8'd0);

  // flags each vector op accepts: column scaling only where an ACC operand is a weight GEMM's
  logic [7:0] vec_flags_ok;
  always_comb begin
    case (ir.op)
      accel_pkg::OP_REQ, accel_pkg::OP_ROPE, accel_pkg::OP_RESADD: vec_flags_ok = accel_pkg::COLSCALE_A;
      accel_pkg::OP_SWIGLU:                  vec_flags_ok = accel_pkg::COLSCALE_A | accel_pkg::COLSCALE_B;
      default:                    vec_flags_ok = 8'h00;
    endcase
  end
  wire [7:0] vec_flags = is_vec ? ir.flags : 8'h00;
  wire gemm_b_from_a = (ir.flags & accel_pkg::GEMM_B_FROM_A) != 8'h00;   // GEMM's B operand is in A SRAM
  // a table address without its flag (or on a non-vector op) is a stray field
  wire cs_stray = (ir.cs0 != 16'd0 && (vec_flags & accel_pkg::COLSCALE_A) == 0) ||
                  (ir.cs1 != 16'd0 && (vec_flags & accel_pkg::COLSCALE_B) == 0);

  // extents in 64-bit so nothing wraps
  wire [63:0] rb = 64'(ir.rows) * 64'(ir.blocks);
  wire [63:0] cb = 64'(ir.rows) * 64'(ir.aux);
  wire [63:0] b_rows = 64'(ir.blocks) * 64'(ir.aux) * N;         // GEMM's B operand
  wire [63:0] cs_rows = 64'(ir.blocks) * 2;                      // a column-scale table
  // ROPE's table: ceil(2 * aux / N) rows per (position, block-in-head)
  wire [63:0] rope_rows = 64'(ir.rows) * 64'(ir.src2) * ((64'(ir.aux) * 2 + 64'(N) - 1) / 64'(N));
  wire [63:0] lines = 64'(ir.rows) * ((ir.flags[1:0] == accel_pkg::MEM_ACC) ? 64'd4 : 64'd1);
  logic [63:0] mem_rows;
  always_comb begin
    case (ir.flags[1:0])
      accel_pkg::MEM_A: mem_rows = 64'(A_ROWS);
      accel_pkg::MEM_W: mem_rows = 64'(W_ROWS);
      default: mem_rows = 64'(ACC_ROWS);
    endcase
  end

  always_comb begin
    err = accel_pkg::ERR_NONE;
    if (reserved_set || cs_stray) err = accel_pkg::ERR_FIELD;
    else case (ir.op)
      accel_pkg::OP_HALT: ;
      accel_pkg::OP_LOAD, accel_pkg::OP_STORE: begin
        if (ir.flags[7:2] != 0 || ir.flags[1:0] == 2'd3 || ir.rows == 0 ||
            (ir.op == accel_pkg::OP_STORE && ir.flags[1:0] == accel_pkg::MEM_W)) err = accel_pkg::ERR_FIELD;
        else if ((ir.dram % N) != 0 || 64'(ir.dram) + lines * N > 64'(DRAM_BYTES) ||
                 64'(ir.op == accel_pkg::OP_LOAD ? ir.dst : ir.src0) + 64'(ir.rows) > mem_rows)
          err = accel_pkg::ERR_RANGE;
      end
      accel_pkg::OP_GEMM: begin
        if ((ir.flags & ~accel_pkg::GEMM_FLAGS) != 8'h00 || ir.rows == 0 || ir.blocks == 0 || ir.aux == 0)
          err = accel_pkg::ERR_FIELD;
        else if (64'(ir.dst) + cb > 64'(ACC_ROWS) || 64'(ir.src0) + rb > 64'(A_ROWS) ||
                 64'(ir.src1) + b_rows > (gemm_b_from_a ? 64'(A_ROWS) : 64'(W_ROWS)))
          err = accel_pkg::ERR_RANGE;
      end
      accel_pkg::OP_REQ, accel_pkg::OP_RMS, accel_pkg::OP_ROPE, accel_pkg::OP_SMAX, accel_pkg::OP_SWIGLU, accel_pkg::OP_RESADD: begin
        if ((ir.flags & ~vec_flags_ok) != 0 || ir.rows == 0 || ir.blocks == 0 ||
            ir.shift0 > 8'd62 || ir.shift1 > 8'd62 ||
            (ir.op == accel_pkg::OP_ROPE && (ir.aux < 2 || ir.aux[0] || 32'(ir.aux) > N || ir.src2 == 0)))
          err = accel_pkg::ERR_FIELD;
        else if (64'(ir.dst) + rb > 64'(A_ROWS)) err = accel_pkg::ERR_RANGE;
        // column-scale tables: 2 W rows per column block
        else if (((ir.flags & accel_pkg::COLSCALE_A) != 8'h00 && 64'(ir.cs0) + cs_rows > 64'(W_ROWS)) ||
                 ((ir.flags & accel_pkg::COLSCALE_B) != 8'h00 && 64'(ir.cs1) + cs_rows > 64'(W_ROWS)))
          err = accel_pkg::ERR_RANGE;
        else case (ir.op)
          accel_pkg::OP_REQ, accel_pkg::OP_SMAX: if (64'(ir.src0) + rb > 64'(ACC_ROWS)) err = accel_pkg::ERR_RANGE;
          accel_pkg::OP_RMS: if (64'(ir.src0) + rb > 64'(A_ROWS) || 64'(ir.src1) + 64'(ir.blocks) > 64'(W_ROWS))
                    err = accel_pkg::ERR_RANGE;
          accel_pkg::OP_ROPE: if (64'(ir.src0) + rb > 64'(ACC_ROWS) || 64'(ir.src1) + rope_rows > 64'(W_ROWS))
                     err = accel_pkg::ERR_RANGE;
          accel_pkg::OP_SWIGLU: if (64'(ir.src0) + rb > 64'(ACC_ROWS) || 64'(ir.src1) + rb > 64'(ACC_ROWS))
                       err = accel_pkg::ERR_RANGE;
          accel_pkg::OP_RESADD: if (64'(ir.src0) + rb > 64'(A_ROWS) || 64'(ir.src1) + rb > 64'(ACC_ROWS))
                       err = accel_pkg::ERR_RANGE;
          default: ;
        endcase
      end
      default: err = accel_pkg::ERR_OPCODE;
    endcase
  end
  // ---------------- footprint (footprint.footprint) ----------------
  // Ranges are computed at 64 bits and kept at 17: decode has range-checked every one of a
  // legal instruction, so each bound is at most the SRAM's size (<= 65536).
  accel_pkg::footprint_t f;
  assign fp = f;
  // one range [lo, hi) of memory m (A, W or ACC) in f: read (wr = 0) or written (wr = 1); a
  // second range of the same kind widens the first to their bounding range (footprint._span)
  task automatic add_range(input logic wr, input logic [1:0] m, input logic [63:0] lo,
                           input logic [63:0] len);
    logic [16:0] l, h, ol, oh;
    logic        v;
    l = 17'(lo);
    h = 17'(lo + len);
    v = wr ? f.wr_v[m] : f.rd_v[m];
    ol = wr ? f.wr_lo[17*m +: 17] : f.rd_lo[17*m +: 17];
    oh = wr ? f.wr_hi[17*m +: 17] : f.rd_hi[17*m +: 17];
    if (v) begin
      if (ol < l) l = ol;
      if (oh > h) h = oh;
    end
    if (wr) begin
      f.wr_v[m] = 1'b1; f.wr_lo[17*m +: 17] = l; f.wr_hi[17*m +: 17] = h;
    end else begin
      f.rd_v[m] = 1'b1; f.rd_lo[17*m +: 17] = l; f.rd_hi[17*m +: 17] = h;
    end
  endtask

  // the bank ports a range [lo, hi) of a memory of 2^rbits rows claims (footprint.bank_mask):
  // bit b for every bank b (of 2^(rbits-2) rows) it touches; 0 if the range does not exist
  function automatic logic [3:0] bank_mask(input logic v, input logic [16:0] lo,
                                           input logic [16:0] hi, input int rbits);
    logic [1:0] first, last;
    first = 2'(lo >> (rbits - 2));
    last = 2'((hi - 17'd1) >> (rbits - 2));
    for (int b = 0; b < 4; b++) bank_mask[b] = v && 2'(b) >= first && 2'(b) <= last;
  endfunction
  localparam int AB = $clog2(A_ROWS);
  localparam int WB = $clog2(W_ROWS);
  localparam int CB = $clog2(ACC_ROWS);

  always_comb begin
    f = '0;
    case (ir.op)
      accel_pkg::OP_LOAD: add_range(1'b1, ir.flags[1:0], 64'(ir.dst), 64'(ir.rows));
      accel_pkg::OP_STORE: add_range(1'b0, ir.flags[1:0], 64'(ir.src0), 64'(ir.rows));
      accel_pkg::OP_GEMM: begin
        add_range(1'b0, accel_pkg::MEM_A, 64'(ir.src0), rb);
        add_range(1'b0, gemm_b_from_a ? accel_pkg::MEM_A : accel_pkg::MEM_W, 64'(ir.src1), b_rows);
        // the old C rows are read back when accumulating, and for every K block after the first
        if ((ir.flags & accel_pkg::GEMM_ACCUMULATE) != 8'h00 || ir.blocks > 8'd1)
          add_range(1'b0, accel_pkg::MEM_ACC, 64'(ir.dst), cb);
        add_range(1'b1, accel_pkg::MEM_ACC, 64'(ir.dst), cb);
      end
      accel_pkg::OP_REQ, accel_pkg::OP_RMS, accel_pkg::OP_ROPE, accel_pkg::OP_SMAX, accel_pkg::OP_SWIGLU, accel_pkg::OP_RESADD: begin
        case (ir.op)
          accel_pkg::OP_RMS, accel_pkg::OP_RESADD: add_range(1'b0, accel_pkg::MEM_A, 64'(ir.src0), rb);
          default: add_range(1'b0, accel_pkg::MEM_ACC, 64'(ir.src0), rb);
        endcase
        case (ir.op)
          accel_pkg::OP_RMS: add_range(1'b0, accel_pkg::MEM_W, 64'(ir.src1), 64'(ir.blocks));  // gain
          accel_pkg::OP_ROPE: add_range(1'b0, accel_pkg::MEM_W, 64'(ir.src1), rope_rows);
          accel_pkg::OP_SWIGLU, accel_pkg::OP_RESADD: add_range(1'b0, accel_pkg::MEM_ACC, 64'(ir.src1), rb);
          default: ;
        endcase
        if ((ir.flags & accel_pkg::COLSCALE_A) != 8'h00) add_range(1'b0, accel_pkg::MEM_W, 64'(ir.cs0), cs_rows);
        if ((ir.flags & accel_pkg::COLSCALE_B) != 8'h00) add_range(1'b0, accel_pkg::MEM_W, 64'(ir.cs1), cs_rows);
        add_range(1'b1, accel_pkg::MEM_A, 64'(ir.dst), rb);
      end
      default: ;   // HALT (no unit) or an instruction decode rejects
    endcase
    f.rd_bank = {bank_mask(f.rd_v[2], f.rd_lo[34 +: 17], f.rd_hi[34 +: 17], CB),
                 bank_mask(f.rd_v[1], f.rd_lo[17 +: 17], f.rd_hi[17 +: 17], WB),
                 bank_mask(f.rd_v[0], f.rd_lo[0 +: 17], f.rd_hi[0 +: 17], AB)};
    f.wr_bank = {bank_mask(f.wr_v[2], f.wr_lo[34 +: 17], f.wr_hi[34 +: 17], CB),
                 bank_mask(f.wr_v[1], f.wr_lo[17 +: 17], f.wr_hi[17 +: 17], WB),
                 bank_mask(f.wr_v[0], f.wr_lo[0 +: 17], f.wr_hi[0 +: 17], AB)};
  end
`ifndef SYNTHESIS
  initial assert ($bits(accel_pkg::footprint_t) == 234 && accel_pkg::FP_BITS == 234 &&
                  accel_pkg::SRAM_BANKS == 4 && A_ROWS >= 4 && W_ROWS >= 4 && ACC_ROWS >= 4);
`endif
endmodule
