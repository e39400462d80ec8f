// Scoreboard of the overlapping controller (ISA.md "Overlap"; footprint.py is its Python twin).
//
// The controller issues in program order, one instruction at a time, but the DMA engine, the
// GEMM unit and the vector unit run at once. For each unit this holds whether an instruction
// is in flight on it (from the cycle after its dispatch to the end of its retire cycle) and
// that instruction's footprint (insn_decode.sv). `conflict` says the instruction in DECODE
// must wait for one of them to retire (hazard_check.sv). It is checked against every unit, its
// own included: an instruction waits for its own unit to retire anyway.
//
// `rd_claim` / `wr_claim` say which bank ports each unit owns this cycle, for the memories'
// request routing in accel_top.sv: those of its instruction in flight, and in its dispatch
// cycle those of the instruction being dispatched (the DMA engine reads a STORE's first line
// then). The hazard checks never let two units claim one bank port.
//
// Cost: 3 x 234 flip-flops of footprints and 3 hazard_check instances (54 17-bit comparators,
// 72 AND gates over the bank claims).
module hazard_unit (
    input  logic         clk,
    input  logic         rst_n,
    input  logic [233:0] fp,           // accel_pkg::footprint_t of the instruction in DECODE
    input  logic [2:0]   start,        // it is dispatched to unit u (accel_pkg::UNIT_*) now
    input  logic [2:0]   retire,       // unit u's instruction retires at the end of this cycle
    output logic [2:0]   inflight,     // an instruction is in flight on unit u
    output logic         conflict,     // the instruction in DECODE must wait
    // bank ports unit u owns now: bit 12u + 4m + b = bank b of memory m (accel_pkg::MEM_*)
    output logic [35:0]  rd_claim,
    output logic [35:0]  wr_claim
);
  // footprints of the instructions in flight, by unit (bit order of accel_pkg::UNIT_*)
  logic [233:0] held_dma, held_gemm, held_vec;
  logic [2:0]   hit;
  hazard_check u_dma  (.mine(fp), .theirs(held_dma),  .conflict(hit[0]));
  hazard_check u_gemm (.mine(fp), .theirs(held_gemm), .conflict(hit[1]));
  hazard_check u_vec  (.mine(fp), .theirs(held_vec),  .conflict(hit[2]));
  assign conflict = (hit & inflight) != 3'b000;

  /* verilator lint_off UNUSEDSIGNAL */  // only their bank claims
  accel_pkg::footprint_t f_new, f_dma, f_gemm, f_vec;
  /* verilator lint_on UNUSEDSIGNAL */
  assign f_new = fp;
  assign f_dma = held_dma;
  assign f_gemm = held_gemm;
  assign f_vec = held_vec;
  assign rd_claim = {(inflight[2] ? f_vec.rd_bank : 12'd0)  | (start[2] ? f_new.rd_bank : 12'd0),
                     (inflight[1] ? f_gemm.rd_bank : 12'd0) | (start[1] ? f_new.rd_bank : 12'd0),
                     (inflight[0] ? f_dma.rd_bank : 12'd0)  | (start[0] ? f_new.rd_bank : 12'd0)};
  assign wr_claim = {(inflight[2] ? f_vec.wr_bank : 12'd0)  | (start[2] ? f_new.wr_bank : 12'd0),
                     (inflight[1] ? f_gemm.wr_bank : 12'd0) | (start[1] ? f_new.wr_bank : 12'd0),
                     (inflight[0] ? f_dma.wr_bank : 12'd0)  | (start[0] ? f_new.wr_bank : 12'd0)};

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
  // one dispatch at a time, to a free unit; only an instruction in flight retires; no bank
  // port has two owners
  always_ff @(posedge clk) begin
    assert ((start & (start - 3'd1)) == 3'b000 && (start & inflight) == 3'b000);
    assert ((retire & ~inflight) == 3'b000);
    assert ((rd_claim[0 +: 12] & rd_claim[12 +: 12]) == 12'd0 &&
            (rd_claim[0 +: 12] & rd_claim[24 +: 12]) == 12'd0 &&
            (rd_claim[12 +: 12] & rd_claim[24 +: 12]) == 12'd0);
    assert ((wr_claim[0 +: 12] & wr_claim[12 +: 12]) == 12'd0 &&
            (wr_claim[0 +: 12] & wr_claim[24 +: 12]) == 12'd0 &&
            (wr_claim[12 +: 12] & wr_claim[24 +: 12]) == 12'd0);
  end
  initial assert (accel_pkg::UNIT_DMA == 0 && accel_pkg::UNIT_GEMM == 1 && accel_pkg::UNIT_VEC == 2);
`endif
endmodule
