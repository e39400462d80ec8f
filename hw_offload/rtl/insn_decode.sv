// Decode-time validation: every check the controller makes before it starts an instruction
// (ISA.md "Instruction encoding"). Purely combinational; golden.validate is its numpy twin and
// the fuzzer holds the two to the same error code for every malformed instruction it draws.
module insn_decode #(
    parameter int N          = 16,
    parameter int A_ROWS     = 16384,
    parameter int W_ROWS     = 65536,
    parameter int ACC_ROWS   = 16384,
    parameter int DRAM_BYTES = 2097152
) (
    input  logic [255:0] insn,   // an accel_pkg::insn_t
    output logic       is_vec,   // a vector-unit opcode
    output logic [7:0] err       // accel_pkg::ERR_NONE, or the code the controller stops with
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
                 64'(ir.src1) + 64'(ir.blocks) * 64'(ir.aux) * N >
                   (gemm_b_from_a ? 64'(A_ROWS) : 64'(W_ROWS)))
          err = accel_pkg::ERR_RANGE;
      end
      accel_pkg::OP_REQ, accel_pkg::OP_RMS, accel_pkg::OP_ROPE, accel_pkg::OP_SMAX, accel_pkg::OP_SWIGLU, accel_pkg::OP_RESADD: begin
        if ((ir.flags & ~vec_flags_ok) != 0 || ir.rows == 0 || ir.blocks == 0 ||
            ir.shift0 > 8'd62 || ir.shift1 > 8'd62 ||
            (ir.op == accel_pkg::OP_ROPE && (ir.aux < 2 || ir.aux[0] || 32'(ir.aux) > N || ir.src2 == 0)))
          err = accel_pkg::ERR_FIELD;
        else if (64'(ir.dst) + rb > 64'(A_ROWS)) err = accel_pkg::ERR_RANGE;
        // column-scale tables: 2 W rows per column block
        else if (((ir.flags & accel_pkg::COLSCALE_A) != 8'h00 && 64'(ir.cs0) + 64'(ir.blocks) * 2 > 64'(W_ROWS)) ||
                 ((ir.flags & accel_pkg::COLSCALE_B) != 8'h00 && 64'(ir.cs1) + 64'(ir.blocks) * 2 > 64'(W_ROWS)))
          err = accel_pkg::ERR_RANGE;
        else case (ir.op)
          accel_pkg::OP_REQ, accel_pkg::OP_SMAX: if (64'(ir.src0) + rb > 64'(ACC_ROWS)) err = accel_pkg::ERR_RANGE;
          accel_pkg::OP_RMS: if (64'(ir.src0) + rb > 64'(A_ROWS) || 64'(ir.src1) + 64'(ir.blocks) > 64'(W_ROWS))
                    err = accel_pkg::ERR_RANGE;
          accel_pkg::OP_ROPE: if (64'(ir.src0) + rb > 64'(ACC_ROWS) ||
                       64'(ir.src1) + 64'(ir.rows) * 64'(ir.src2) *
                         ((64'(ir.aux) * 2 + 64'(N) - 1) / 64'(N)) > 64'(W_ROWS))
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
endmodule
