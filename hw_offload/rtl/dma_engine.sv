// DMA engine: one LOAD (DRAM -> SRAM) or STORE (SRAM -> DRAM) at a time, as an AXI4 master.
//
// A transfer is rows SRAM rows = `beats` N-byte beats (4 per accumulator row). The engine
// splits it into INCR bursts that never cross a CHUNK-byte boundary (CHUNK = min(4 KiB,
// 256 beats): AXI4's 4 KiB rule and its 256-beat limit), and issues one burst request per
// cycle, the first in the dispatch cycle itself, so a memory that answers one cycle after a
// request and then a beat per cycle makes a transfer exactly `beats` cycles long. Reads take
// every R beat as it arrives (rready is held high); writes offer W beats back to back.
//
// Writes are posted: a STORE ends with its last W beat, and `writes_pending` counts the
// bursts whose B response has not yet come back. The controller waits for it to reach zero
// before a LOAD (AXI orders nothing between the read and write channels) and before it
// reports a run done (the host then reads DRAM).
//
// Written for Yosys 0.23 as well as Verilator: no package import, package names in full.
module dma_engine #(
    parameter int N = 16                   // beat = one N-byte DRAM line; N <= 128
) (
    input  logic           clk,
    input  logic           rst_n,
    // command, valid in the dispatch cycle (decode has range-checked it)
    input  logic           start,
    input  logic           store,          // 1: SRAM -> DRAM
    input  logic [1:0]     mem,            // accel_pkg::MEM_A / MEM_W / MEM_ACC
    input  logic [15:0]    rows,
    input  logic [31:0]    dram_addr,      // N-aligned
    input  logic [15:0]    sram_row,
    output logic           busy,           // from the cycle after start to the last beat
    output logic           last_beat,      // this cycle moves the transfer's last beat
    output logic           beat,           // this cycle moves a beat (counters)
    output logic           store_q,        // direction of the current transfer
    output logic           writes_pending, // a write burst awaits its B response
    // SRAM side. LOAD: write sram_wdata at the current beat's row / (accumulator) quarter.
    // STORE: a synchronous read -- the line addressed by rd_* in one cycle is sram_rdata in
    // the next, so the engine addresses each beat's line one cycle ahead (the first in the
    // dispatch cycle).
    output logic [15:0]    row,
    output logic [1:0]     quarter,
    output logic [1:0]     mem_q,
    output logic           sram_we,
    output logic [N*8-1:0] sram_wdata,
    output logic [15:0]    rd_row,
    output logic [1:0]     rd_quarter,
    output logic [1:0]     rd_mem,
    input  logic [N*8-1:0] sram_rdata,
    // AXI4 master: read address / data
    output logic           m_axi_arvalid,
    input  logic           m_axi_arready,
    output logic [31:0]    m_axi_araddr,
    output logic [7:0]     m_axi_arlen,
    output logic [2:0]     m_axi_arsize,
    output logic [1:0]     m_axi_arburst,
    input  logic           m_axi_rvalid,
    output logic           m_axi_rready,
    input  logic [N*8-1:0] m_axi_rdata,
    input  logic [1:0]     m_axi_rresp,
    input  logic           m_axi_rlast,
    // write address / data / response
    output logic           m_axi_awvalid,
    input  logic           m_axi_awready,
    output logic [31:0]    m_axi_awaddr,
    output logic [7:0]     m_axi_awlen,
    output logic [2:0]     m_axi_awsize,
    output logic [1:0]     m_axi_awburst,
    output logic           m_axi_wvalid,
    input  logic           m_axi_wready,
    output logic [N*8-1:0] m_axi_wdata,
    output logic [N-1:0]   m_axi_wstrb,
    output logic           m_axi_wlast,
    input  logic           m_axi_bvalid,
    output logic           m_axi_bready,
    input  logic [1:0]     m_axi_bresp
);
  localparam int NB = $clog2(N);                        // log2 of the beat size in bytes
  localparam int CHUNK = (256 * N < 4096) ? 256 * N : 4096;
  localparam int CB = $clog2(CHUNK);

  // ---- data side: beat counter of the current transfer ----
  logic        st;                           // the current transfer is a STORE
  logic [31:0] k, beats;
  logic [15:0] row0;
  logic [CB-1:0] off0;                       // the transfer's DRAM address modulo CHUNK
  assign store_q = st;
  assign row = row0 + 16'((mem_q == accel_pkg::MEM_ACC) ? (k >> 2) : k);
  assign quarter = k[1:0];
  assign m_axi_rready = busy && !st;
  assign m_axi_wvalid = busy && st;
  assign m_axi_wdata = sram_rdata;
  assign m_axi_wstrb = '1;
  // a burst ends at a CHUNK boundary or at the transfer's end (the address side splits alike)
  wire [CB-1:0] w_next = off0 + CB'(k << NB) + CB'(N);   // offset of the beat after this one
  wire burst_end = (k == beats - 32'd1) || (w_next == '0);
  assign m_axi_wlast = burst_end;
  wire r_beat = m_axi_rvalid && m_axi_rready;
  wire w_beat = m_axi_wvalid && m_axi_wready;
  assign beat = r_beat || w_beat;
  // the line the next cycle's W beat carries: beat 0 at dispatch, then the one after each
  // accepted beat (re-read while the memory holds wready low)
  wire [31:0] rk = start ? 32'd0 : (w_beat ? k + 32'd1 : k);
  assign rd_mem = start ? mem : mem_q;
  assign rd_row = (start ? sram_row : row0) + 16'((rd_mem == accel_pkg::MEM_ACC) ? (rk >> 2) : rk);
  assign rd_quarter = rk[1:0];
  assign last_beat = beat && (k == beats - 32'd1);
  assign sram_we = r_beat;
  assign sram_wdata = m_axi_rdata;

  // ---- address side: one burst request per cycle until the transfer is covered ----
  logic [31:0] req_left, req_addr;           // beats not yet requested, next burst's address
  wire  [31:0] cmd_beats = 32'(rows) * ((mem == accel_pkg::MEM_ACC) ? 32'd4 : 32'd1);
  wire  [31:0] a_left = start ? cmd_beats : req_left;
  wire  [31:0] a_addr = start ? dram_addr : req_addr;
  wire         a_store = start ? store : st;
  wire  [31:0] to_chunk_end = 32'(CHUNK - 32'(a_addr[CB-1:0])) >> NB;
  wire  [31:0] burst = (a_left < to_chunk_end) ? a_left : to_chunk_end;
  wire         a_valid = (start || busy) && a_left != 32'd0;
  assign m_axi_arvalid = a_valid && !a_store;
  assign m_axi_awvalid = a_valid && a_store;
  assign m_axi_araddr = a_addr;
  assign m_axi_awaddr = a_addr;
  assign m_axi_arlen = 8'(burst - 32'd1);
  assign m_axi_awlen = 8'(burst - 32'd1);
  assign m_axi_arsize = 3'(NB);
  assign m_axi_awsize = 3'(NB);
  assign m_axi_arburst = 2'b01;              // INCR
  assign m_axi_awburst = 2'b01;
  wire a_taken = (m_axi_arvalid && m_axi_arready) || (m_axi_awvalid && m_axi_awready);

  // ---- write responses ----
  logic [15:0] b_out;                        // bursts awaiting B (a transfer has <= 1025)
  assign m_axi_bready = 1'b1;
  assign writes_pending = b_out != 16'd0;
  wire aw_taken = m_axi_awvalid && m_axi_awready;
  wire b_taken = m_axi_bvalid && m_axi_bready;

  always_ff @(posedge clk or negedge rst_n) begin
    if (!rst_n) begin
      busy <= 1'b0; st <= 1'b0; mem_q <= '0; k <= '0; beats <= '0; row0 <= '0; off0 <= '0;
      req_left <= '0; req_addr <= '0; b_out <= '0;
    end else begin
      if (start) begin
        busy <= 1'b1; st <= store; mem_q <= mem; k <= '0; beats <= cmd_beats;
        row0 <= sram_row; off0 <= CB'(dram_addr);
      end else if (beat) begin
        k <= k + 32'd1;
        if (last_beat) busy <= 1'b0;
      end
      if (start || busy) begin
        req_left <= a_taken ? a_left - burst : a_left;
        req_addr <= a_taken ? a_addr + (burst << NB) : a_addr;
      end
      b_out <= b_out + 16'(aw_taken) - 16'(b_taken);
    end
  end

`ifndef SYNTHESIS
  // The memory answers OKAY (decode has range-checked every address), ends each read burst
  // where its request said, and sends no B it does not owe.
  always_ff @(posedge clk) if (r_beat) assert (m_axi_rresp == 2'b00 && m_axi_rlast == burst_end);
  always_ff @(posedge clk) if (b_taken) assert (m_axi_bresp == 2'b00 && b_out != 16'd0);
  initial assert (N >= 4 && N <= 128 && (1 << NB) == N);
`endif
endmodule
