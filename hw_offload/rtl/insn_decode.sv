// Decode: every check the controller makes before it starts an instruction (ISA.md
// "Instruction encoding"), and the instruction's footprint, the rows it reads and writes in
// each SRAM and the shared ports it needs (ISA.md "Overlap"), for the hazard checks of
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
    output logic [212:0] fp      // an accel_pkg::footprint_t; meaningful when err == ERR_NONE
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

  always_comb begin
    f = '0;
    case (ir.op)
      accel_pkg::OP_LOAD: begin
        add_range(1'b1, ir.flags[1:0], 64'(ir.dst), 64'(ir.rows));
        if (ir.flags[1:0] == accel_pkg::MEM_A) f.ports[accel_pkg::PORT_A_WRITE] = 1'b1;
        if (ir.flags[1:0] == accel_pkg::MEM_ACC) f.ports[accel_pkg::PORT_ACC_WRITE] = 1'b1;
      end
      accel_pkg::OP_STORE: begin
        add_range(1'b0, ir.flags[1:0], 64'(ir.src0), 64'(ir.rows));
        f.ports[accel_pkg::PORT_DMA_GEMM_READ] = 1'b1;
      end
      accel_pkg::OP_GEMM: begin
        // an accumulating GEMM also reads its C rows: the write range covers every hazard
        add_range(1'b0, accel_pkg::MEM_A, 64'(ir.src0), rb);
        add_range(1'b0, gemm_b_from_a ? accel_pkg::MEM_A : accel_pkg::MEM_W, 64'(ir.src1), b_rows);
        add_range(1'b1, accel_pkg::MEM_ACC, 64'(ir.dst), cb);
        f.ports[accel_pkg::PORT_ACC_WRITE] = 1'b1;
        f.ports[accel_pkg::PORT_DMA_GEMM_READ] = 1'b1;
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
        f.ports[accel_pkg::PORT_A_WRITE] = 1'b1;
      end
      default: ;   // HALT (no unit) or an instruction decode rejects
    endcase
  end
`ifndef SYNTHESIS
  initial assert ($bits(accel_pkg::footprint_t) == 213 && accel_pkg::FP_BITS == 213);
`endif
endmodule
