// Does an instruction conflict with one in flight (footprint.Footprint.conflicts)? They claim
// a common bank port (the read port, or the write port, of one bank of one SRAM), or, in some
// SRAM, one writes rows the other reads or writes. Purely combinational; hazard_unit.sv holds
// one footprint per unit and asks this once per unit.
//
// Cost: per SRAM three range-overlap tests (theirs written / mine read, theirs written / mine
// written, theirs read / mine written) of two 17-bit magnitude comparators each: 18; and 24
// AND gates over the bank-port claims.
module hazard_check (
    input  logic [233:0] mine,      // accel_pkg::footprint_t of the instruction in DECODE
    input  logic [233:0] theirs,    // accel_pkg::footprint_t of the instruction in flight
    output logic         conflict
);
  accel_pkg::footprint_t m, t;
  assign m = mine;
  assign t = theirs;

  // [alo, ahi) and [blo, bhi) share a row (both exist)
  function automatic logic meets(input logic av, input logic [16:0] alo, input logic [16:0] ahi,
                                 input logic bv, input logic [16:0] blo, input logic [16:0] bhi);
    meets = av && bv && (alo < bhi) && (blo < ahi);
  endfunction

  always_comb begin
    conflict = (m.rd_bank & t.rd_bank) != 12'd0 || (m.wr_bank & t.wr_bank) != 12'd0;
    for (int k = 0; k < 3; k++)   // memory k: MEM_A, MEM_W, MEM_ACC
      if (meets(t.wr_v[k], t.wr_lo[17*k +: 17], t.wr_hi[17*k +: 17],
                m.rd_v[k], m.rd_lo[17*k +: 17], m.rd_hi[17*k +: 17]) ||      // read after write
          meets(t.wr_v[k], t.wr_lo[17*k +: 17], t.wr_hi[17*k +: 17],
                m.wr_v[k], m.wr_lo[17*k +: 17], m.wr_hi[17*k +: 17]) ||      // write after write
          meets(t.rd_v[k], t.rd_lo[17*k +: 17], t.rd_hi[17*k +: 17],
                m.wr_v[k], m.wr_lo[17*k +: 17], m.wr_hi[17*k +: 17]))        // write after read
        conflict = 1'b1;
  end
endmodule
