// A small synchronous 1R1W memory: the vector unit's per-block table store. An entry holds one
// column block's tables (vector_unit.sv: RMS gain in slot 0, the cs0 column-scale table in
// slots 0-1, cs1's in slots 2-3), each slot one SLOT_BITS-wide weight-SRAM row.
//
// * Read: address in cycle t (with re), the entry in the read-data register `rdata` in t+1;
//   without re the register keeps its value.
// * Write: one slot-wide `wdata` into every slot whose `wslot` bit is set, at the end of the
//   cycle. A read of an entry being written in the same cycle returns its old contents (the
//   vector unit never does that: it reads a table only after the fill's last write).
//
// In silicon this is a memory macro: synthesis (synth.py) keeps it as a black box.
module table_sram
#(
    parameter int SLOTS     = 4,
    parameter int SLOT_BITS = 128,
    parameter int DEPTH     = 256,
    parameter int AW        = $clog2(DEPTH)
) (
    input  logic                       clk,
    input  logic                       re,
    input  logic [AW-1:0]              raddr,
    output logic [SLOTS*SLOT_BITS-1:0] rdata,
    input  logic [SLOTS-1:0]           wslot,
    input  logic [AW-1:0]              waddr,
    input  logic [SLOT_BITS-1:0]       wdata
);
  logic [SLOTS*SLOT_BITS-1:0] mem [DEPTH];

  always_ff @(posedge clk) begin
    if (re) rdata <= mem[raddr];
    for (int s = 0; s < SLOTS; s++)
      if (wslot[s]) mem[waddr][s*SLOT_BITS +: SLOT_BITS] <= wdata;
  end
endmodule
