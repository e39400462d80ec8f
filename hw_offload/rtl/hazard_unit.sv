// Scoreboard of the overlapping controller (ISA.md "Overlap"; footprint.py is its Python twin).
//
// The controller issues in program order, one instruction at a time, but the DMA engine, the
// GEMM unit and the vector unit run at once. For each unit this holds whether an instruction
// is in flight on it (from the cycle after its dispatch to the end of its retire cycle) and
// that instruction's footprint (insn_decode.sv). `conflict` says the instruction in DECODE
// must wait: it shares a port with one in flight, or, in some SRAM, one of the two writes rows
// the other reads or writes (footprint.Footprint.conflicts). It is checked against every
// unit, its own included: an instruction waits for its own unit to retire anyway.
//
// Cost: per unit and memory three range-overlap tests (theirs written / mine read, theirs
// written / mine written, theirs read / mine written) of two 17-bit magnitude comparators
// each: 3 units x 3 memories x 6 = 54 comparators, plus 3 x 213 flip-flops of footprints.
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
  accel_pkg::footprint_t mine;
  accel_pkg::footprint_t held [3];
  assign mine = fp;

  // [alo, ahi) and [blo, bhi) share a row (both exist)
  function automatic logic meets(input logic av, input logic [16:0] alo, input logic [16:0] ahi,
                                 input logic bv, input logic [16:0] blo, input logic [16:0] bhi);
    meets = av && bv && (alo < bhi) && (blo < ahi);
  endfunction

  logic [2:0] hit;   // per unit: the instruction in flight there conflicts with mine
  always_comb begin
    for (int u = 0; u < 3; u++) begin
      hit[u] = (mine.ports & held[u].ports) != 3'b000;
      for (int m = 0; m < 3; m++) begin
        if (meets(held[u].wr_v[m], held[u].wr_lo[17*m +: 17], held[u].wr_hi[17*m +: 17],
                  mine.rd_v[m], mine.rd_lo[17*m +: 17], mine.rd_hi[17*m +: 17]) ||   // RAW
            meets(held[u].wr_v[m], held[u].wr_lo[17*m +: 17], held[u].wr_hi[17*m +: 17],
                  mine.wr_v[m], mine.wr_lo[17*m +: 17], mine.wr_hi[17*m +: 17]) ||   // WAW
            meets(held[u].rd_v[m], held[u].rd_lo[17*m +: 17], held[u].rd_hi[17*m +: 17],
                  mine.wr_v[m], mine.wr_lo[17*m +: 17], mine.wr_hi[17*m +: 17]))     // WAR
          hit[u] = 1'b1;
      end
    end
  end
  assign conflict = (hit & inflight) != 3'b000;
  assign dma_shared_read = inflight[accel_pkg::UNIT_DMA] &&
                           held[accel_pkg::UNIT_DMA].ports[accel_pkg::PORT_DMA_GEMM_READ];

  always_ff @(posedge clk or negedge rst_n) begin
    if (!rst_n) begin
      inflight <= '0;
    end else begin
      // a unit takes a new instruction only after the cycle its last one retired in
      inflight <= (inflight & ~retire) | start;
    end
  end
  always_ff @(posedge clk)
    for (int u = 0; u < 3; u++)
      if (start[u]) held[u] <= mine;

`ifndef SYNTHESIS
  // one dispatch at a time, to a free unit; only an instruction in flight retires
  always_ff @(posedge clk) begin
    assert ((start & (start - 3'd1)) == 3'b000 && (start & inflight) == 3'b000);
    assert ((retire & ~inflight) == 3'b000);
  end
`endif
endmodule
