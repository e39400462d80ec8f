// AXI4-Lite slave for host control: turns each read or write transaction into a one-cycle
// access (rd_en / wr_en with a 32-bit byte address) that accel_top serves from its
// registers and instruction memory. One transaction of each kind at a time:
//
// * a write is accepted when its address and data are both valid (awready = wready in that
//   cycle), performed in the same cycle, and answered with B the cycle after: OKAY, or
//   SLVERR when accel_top refused it (wr_ok low: an unmapped address, a partial-word write,
//   instruction memory while running);
// * a read is accepted when no R is pending, and its data (rd_data, sampled in the accepting
//   cycle) is returned the cycle after, SLVERR when rd_ok is low.
//
// Written for Yosys 0.23 as well as Verilator (no package references at all).
module host_axil (
    input  logic        clk,
    input  logic        rst_n,
    input  logic        s_axil_awvalid,
    output logic        s_axil_awready,
    input  logic [31:0] s_axil_awaddr,
    input  logic        s_axil_wvalid,
    output logic        s_axil_wready,
    input  logic [31:0] s_axil_wdata,
    input  logic [3:0]  s_axil_wstrb,
    output logic        s_axil_bvalid,
    input  logic        s_axil_bready,
    output logic [1:0]  s_axil_bresp,
    input  logic        s_axil_arvalid,
    output logic        s_axil_arready,
    input  logic [31:0] s_axil_araddr,
    output logic        s_axil_rvalid,
    input  logic        s_axil_rready,
    output logic [31:0] s_axil_rdata,
    output logic [1:0]  s_axil_rresp,
    // the access, to accel_top
    output logic        wr_en,
    output logic [31:0] wr_addr,
    output logic [31:0] wr_data,
    input  logic        wr_ok,        // accel_top takes this write
    output logic        rd_en,
    output logic [31:0] rd_addr,
    input  logic [31:0] rd_data,
    input  logic        rd_ok
);
  localparam logic [1:0] OKAY = 2'b00, SLVERR = 2'b10;

  assign s_axil_awready = s_axil_awvalid && s_axil_wvalid && !s_axil_bvalid;
  assign s_axil_wready = s_axil_awready;
  assign s_axil_arready = !s_axil_rvalid;
  // only whole 32-bit words are written; a partial strobe is refused (SLVERR)
  assign wr_en = s_axil_awready && s_axil_wstrb == 4'hF;
  assign wr_addr = s_axil_awaddr;
  assign wr_data = s_axil_wdata;
  assign rd_en = s_axil_arvalid && s_axil_arready;
  assign rd_addr = s_axil_araddr;

  always_ff @(posedge clk or negedge rst_n) begin
    if (!rst_n) begin
      s_axil_bvalid <= 1'b0; s_axil_bresp <= OKAY;
      s_axil_rvalid <= 1'b0; s_axil_rresp <= OKAY; s_axil_rdata <= '0;
    end else begin
      if (s_axil_awready) begin
        s_axil_bvalid <= 1'b1;
        s_axil_bresp <= (wr_en && wr_ok) ? OKAY : SLVERR;
      end else if (s_axil_bready) s_axil_bvalid <= 1'b0;
      if (rd_en) begin
        s_axil_rvalid <= 1'b1;
        s_axil_rdata <= rd_ok ? rd_data : 32'd0;
        s_axil_rresp <= rd_ok ? OKAY : SLVERR;
      end else if (s_axil_rready) s_axil_rvalid <= 1'b0;
    end
  end
endmodule
