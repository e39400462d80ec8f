// One bank of an on-chip SRAM (ISA.md "Memories"): DEPTH rows of BYTES bytes, one synchronous
// read port and one write port, as a memory compiler's 1R1W macro offers them.
//
// Read: with re high in cycle t, the row at raddr is in rdata from t+1 (the macro's output
// register); without re, rdata keeps its value. A read and a write of one row in the same cycle
// read the old row. Write: with we high, the bytes of wdata whose wbe bit is set are written to
// row waddr at the end of the cycle.
module sram_bank #(
    parameter int BYTES = 16,
    parameter int DEPTH = 4096
) (
    input  logic                     clk,
    input  logic                     re,
    input  logic [$clog2(DEPTH)-1:0] raddr,
    output logic [BYTES*8-1:0]       rdata,
    input  logic                     we,
    input  logic [$clog2(DEPTH)-1:0] waddr,
    input  logic [BYTES-1:0]         wbe,
    input  logic [BYTES*8-1:0]       wdata
);
  logic [BYTES*8-1:0] mem [DEPTH];
  always_ff @(posedge clk) begin
    if (re) rdata <= mem[raddr];
    // a whole row stays one write: byte by byte, GEMM-bound runs simulate ~25% slower
    if (we) begin
      if (wbe == '1) mem[waddr] <= wdata;
      else
        for (int b = 0; b < BYTES; b++)
          if (wbe[b]) mem[waddr][b*8 +: 8] <= wdata[b*8 +: 8];
    end
  end
endmodule
