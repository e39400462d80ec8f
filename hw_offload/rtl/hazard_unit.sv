// Scoreboard of the overlapping controller (ISA.md "Overlap"; footprint.py is its Python twin).
//
// The controller issues in program order, one instruction at a time, but the DMA engine, the
// GEMM unit and the vector unit run at once. For each unit this holds whether an instruction
// is in flight on it (from the cycle after its dispatch to the end of its retire cycle) and
// that instruction's footprint (insn_decode.sv). `conflict` says the instruction in DECODE
// must wait for one of them to retire (hazard_check.sv). It is checked against every unit, its
// own included: an instruction waits for its own unit to retire anyway.
//
// Cost: 3 x 213 flip-flops of footprints and 3 hazard_check instances (54 17-bit comparators).
module hazard_unit (
    input  logic         clk,
    input  logic         rst_n,
    input  logic [212:0] fp,           // accel_pkg::footprint_t of the instruction in DECODE
    input  logic [2:0]   start,        // it is dispatched to unit u (accel_pkg::UNIT_*) now
    input  logic [2:0]   retire,       // unit u's instruction retires at the end of this cycle
    output logic [2:0]   inflight,     // an instruction is in flight on unit u
    output logic         conflict,     // the instruction in DECODE must wait
    output logic         dma_shared_read  // the DMA's instruction in flight is a STORE, which
                                          // reads A / ACC through the GEMM unit's read port
);
  // footprints of the instructions in flight, by unit (bit order of accel_pkg::UNIT_*)
  logic [212:0] held_dma, held_gemm, held_vec;
  logic [2:0]   hit;
  hazard_check u_dma  (.mine(fp), .theirs(held_dma),  .conflict(hit[0]));
  hazard_check u_gemm (.mine(fp), .theirs(held_gemm), .conflict(hit[1]));
  hazard_check u_vec  (.mine(fp), .theirs(held_vec),  .conflict(hit[2]));
  assign conflict = (hit & inflight) != 3'b000;

  /* verilator lint_off UNUSEDSIGNAL */  // only its port bits
  accel_pkg::footprint_t dma_fp;
  /* verilator lint_on UNUSEDSIGNAL */
  assign dma_fp = held_dma;
  assign dma_shared_read = inflight[accel_pkg::UNIT_DMA] &&
                           dma_fp.ports[accel_pkg::PORT_DMA_GEMM_READ];

  always_ff @(posedge clk or negedge rst_n) begin
    if (!rst_n) begin
      inflight <= '0;
    end else begin
      // a unit takes a new instruction only after the cycle its last one retired in
      inflight <= (inflight & ~retire) | start;
    end
  end
  always_ff @(posedge clk) begin
    if (start[accel_pkg::UNIT_DMA])  held_dma <= fp;
    if (start[accel_pkg::UNIT_GEMM]) held_gemm <= fp;
    if (start[accel_pkg::UNIT_VEC])  held_vec <= fp;
  end

`ifndef SYNTHESIS
  // one dispatch at a time, to a free unit; only an instruction in flight retires
  always_ff @(posedge clk) begin
    assert ((start & (start - 3'd1)) == 3'b000 && (start & inflight) == 3'b000);
    assert ((retire & ~inflight) == 3'b000);
  end
  initial assert (accel_pkg::UNIT_DMA == 0 && accel_pkg::UNIT_GEMM == 1 && accel_pkg::UNIT_VEC == 2);
`endif
endmodule
