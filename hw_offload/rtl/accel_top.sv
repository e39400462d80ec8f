// Accelerator top: host interface, on-chip memories, controller (fetch / decode / dispatch)
// and performance counters.
//
// Overlap (ISA.md "Overlap"): the controller issues in program order, but the DMA engine, the
// GEMM unit and the vector unit run at once. It FETCHes an instruction (1 cycle, imem's
// synchronous read), holds it in DECODE until its unit has retired its previous instruction,
// no instruction in flight on another unit conflicts with it (hazard_unit.sv: data hazards on
// row ranges per SRAM, bank-port claims) and, for a LOAD, no posted write is outstanding;
// then it dispatches it (the unit's start pulse) and FETCHes the next one in the next cycle.
// An instruction retires at the end of its DMA last-beat cycle, or of the GEMM / vector
// unit's `done` cycle. HALT, a decode error and a pc error stop the run once every unit has
// retired and every write is acknowledged. Each unit works from its own copy of its
// instruction (the instruction register moves on at the next FETCH). The systolic array also
// overlaps weight loading with streaming inside one GEMM.
//
// Outside: DRAM sits behind the DMA engine's AXI4 master port (m_axi_*; sim/harness.cpp
// answers it with a memory model of set latency and bandwidth, and the host reads and writes
// DRAM there directly). The host controls the accelerator through an AXI4-Lite slave
// (s_axil_*, host_axil.sv): the registers at byte address 4 * index, the instruction memory
// at IMEM_BASE. `irq` is high from the end of a run (STATUS.done) until the next start.
//
// Memories: every SRAM is SRAM_BANKS banks (sram_bank.sv), bank = the top two bits of the row
// address, each with one synchronous read port (address in cycle t, data from the bank's
// read-data register in t+1) and one write port. Each unit makes at most one read request per
// SRAM per cycle; a bank port takes the request of the unit whose instruction claims it
// (hazard_unit.sv: at most one does), so no port is ever arbitrated. ISA.md, "Memories".
module accel_top
  import accel_pkg::*;
#(
    parameter int N          = 16,
    parameter int LANES      = N,       // vector-unit lanes, elements per cycle: divides N
    parameter int A_ROWS     = 16384,   // activation SRAM rows of N int8
    parameter int W_ROWS     = 65536,   // weight SRAM rows of N int8 (resident across runs)
    parameter int ACC_ROWS   = 16384,   // accumulator SRAM rows of N int32
    parameter int DRAM_BYTES = 2097152, // off-chip memory behind m_axi (decode's range check)
    parameter int IMEM_DEPTH = 1024     // 256-bit instructions
) (
    input  logic        clk,
    input  logic        rst_n,
    // host control: AXI4-Lite slave (registers and instruction memory) and the done line
    input  logic           s_axil_awvalid,
    output logic           s_axil_awready,
    input  logic [31:0]    s_axil_awaddr,
    input  logic           s_axil_wvalid,
    output logic           s_axil_wready,
    input  logic [31:0]    s_axil_wdata,
    input  logic [3:0]     s_axil_wstrb,
    output logic           s_axil_bvalid,
    input  logic           s_axil_bready,
    output logic [1:0]     s_axil_bresp,
    input  logic           s_axil_arvalid,
    output logic           s_axil_arready,
    input  logic [31:0]    s_axil_araddr,
    output logic           s_axil_rvalid,
    input  logic           s_axil_rready,
    output logic [31:0]    s_axil_rdata,
    output logic [1:0]     s_axil_rresp,
    output logic           irq,
    // AXI4 master to DRAM (dma_engine.sv): INCR bursts of N-byte beats
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
  localparam int AW = $clog2(A_ROWS);
  localparam int WW = $clog2(W_ROWS);
  localparam int CW = $clog2(ACC_ROWS);
  localparam int IW = $clog2(IMEM_DEPTH);

  // ---------------- memories ----------------
  logic [255:0]    imem  [IMEM_DEPTH];
  // the SRAMs' banks are the sram_bank instances below ("bank ports")

  // ---------------- registers and counters ----------------
  logic        running, done_flag, err_flag;
  logic [7:0]  err_code;
  logic [31:0] pc, start_pc, err_pc;
  logic [63:0] cnt_cycles, cnt_array, cnt_vec, cnt_dma, cnt_stall, cnt_bytes_in, cnt_bytes_out,
               cnt_insns, cnt_overlap, cnt_all_busy;

  // ---------------- controller ----------------
  typedef enum logic [1:0] {C_IDLE, C_FETCH, C_DECODE} cstate_t;
  cstate_t     cstate;
  insn_t        ir;            // the instruction being decoded
  logic [7:0]   dec_err;
  logic         is_vec;
  logic [FP_BITS-1:0] dec_fp;  // its footprint (footprint_t)
  insn_decode #(.N(N), .A_ROWS(A_ROWS), .W_ROWS(W_ROWS), .ACC_ROWS(ACC_ROWS),
                .DRAM_BYTES(DRAM_BYTES)) u_decode (.insn(ir), .is_vec, .err(dec_err), .fp(dec_fp));
  wire is_dma = (ir.op == OP_LOAD) || (ir.op == OP_STORE);
  wire [2:0] unit_of = {is_vec, ir.op == OP_GEMM, is_dma};   // bit UNIT_*: ir's unit

  // scoreboard (hazard_unit.sv): what is in flight on each unit, and whether ir must wait
  logic [2:0] inflight;
  logic       hazard;
  logic [35:0] rd_claim, wr_claim;   // bank ports owned: bit 12 * unit + 4 * memory + bank
  wire [2:0]  retire;
  wire [2:0]  start;
  hazard_unit u_hazard (.clk, .rst_n, .fp(dec_fp), .start, .retire, .inflight,
                        .conflict(hazard), .rd_claim, .wr_claim);
  // every unit has retired and every posted write is acknowledged: a run may stop
  wire drained = (inflight == 3'b000) && !dma_writes_pending;
  wire dispatch = (cstate == C_DECODE) && (dec_err == ERR_NONE) && (ir.op != OP_HALT) &&
                  (unit_of & inflight) == 3'b000 && !hazard &&
                  !(ir.op == OP_LOAD && dma_writes_pending);
  assign start = dispatch ? unit_of : 3'b000;
  wire gemm_start = start[UNIT_GEMM];
  wire vec_start  = start[UNIT_VEC];
  wire dma_start  = start[UNIT_DMA];
  // The GEMM and vector units read their command ports for as long as they run: each gets
  // ir in its dispatch cycle and its own copy after (the DMA engine latches its command).
  /* verilator lint_off UNUSEDSIGNAL */  // fields a unit does not take
  insn_t g_held, v_held, g_ir, v_ir;
  /* verilator lint_on UNUSEDSIGNAL */
  always_ff @(posedge clk) begin
    if (gemm_start) g_held <= ir;
    if (vec_start)  v_held <= ir;
  end
  assign g_ir = gemm_start ? ir : g_held;
  assign v_ir = vec_start ? ir : v_held;
  wire gemm_b_from_a = (g_ir.flags & GEMM_B_FROM_A) != 8'h00;   // GEMM's B operand is in A SRAM

  // ---------------- DMA (dma_engine.sv) ----------------
  // A LOAD, a HALT or a stop waits in DECODE (a pc error in FETCH) until every posted write
  // has its B response: AXI orders nothing between reads and writes, and the host reads DRAM
  // once the run is done (`dispatch`, `drained`).
  logic dma_busy, dma_last, dma_beat, dma_store, dma_writes_pending, dma_we;
  logic [1:0]  dma_mem, dma_q;
  /* verilator lint_off UNUSEDSIGNAL */  // row bits above the largest SRAM's index width
  logic [15:0] dma_row, dma_rd_row;
  /* verilator lint_on UNUSEDSIGNAL */
  logic [1:0]  dma_rd_q, dma_rd_mem;
  logic [N*8-1:0] dma_wdata, dma_rline;

  // ---------------- units ----------------
  // Memories are indexed by the low bits of 16-bit row addresses; the high bits are only
  // range-checked at decode, which Verilator would otherwise flag as unused.
  /* verilator lint_off UNUSEDSIGNAL */
  logic gemm_busy, gemm_done, vec_busy, vec_done;
  logic g_a_re, g_w_re, g_c_re;
  logic [15:0] g_a_raddr, g_w_raddr, g_c_raddr, g_c_waddr;
  logic g_c_we;
  logic [N*32-1:0] g_c_wdata;
  logic        v_a_re, v_c_re, v_w_re;
  logic [15:0] v_a_raddr, v_c_raddr, v_w_raddr;
  logic [15:0] v_a_waddr;
  logic v_a_we;
  logic [N-1:0] v_a_wbe;
  logic [N*8-1:0] v_a_wdata;

  // The units' read data: the read-data register of the bank each addressed a cycle earlier
  // (bank ports, below).
  logic [N*8-1:0]  g_a_rdata, g_w_rdata, v_a_rdata, v_w_rdata;
  logic [N*32-1:0] g_c_rdata, v_c_rdata;
  logic [N*8-1:0]  dma_a_rdata;
  logic [N*32-1:0] dma_c_rdata;

  gemm_unit #(.N(N)) u_gemm (
    .clk, .rst_n, .start(gemm_start),
    .m_rows(g_ir.rows), .kb_n(g_ir.blocks), .nb_n(g_ir.aux), .c_base(g_ir.dst), .a_base(g_ir.src0),
    .b_base(g_ir.src1), .accumulate((g_ir.flags & GEMM_ACCUMULATE) != 8'h00),
    .transpose_b((g_ir.flags & GEMM_TRANSPOSE_B) != 8'h00), .b_from_a(gemm_b_from_a),
    .busy(gemm_busy), .done(gemm_done),
    .a_re(g_a_re), .a_raddr(g_a_raddr), .a_rdata(g_a_rdata),
    .w_re(g_w_re), .w_raddr(g_w_raddr), .w_rdata(g_w_rdata),
    .c_re(g_c_re), .c_raddr(g_c_raddr), .c_rdata(g_c_rdata),
    .c_we(g_c_we), .c_waddr(g_c_waddr), .c_wdata(g_c_wdata)
  );

  vector_unit #(.N(N), .LANES(LANES)) u_vec (
    .clk, .rst_n, .start(vec_start), .op(v_ir.op), .flags(v_ir.flags[1:0]), .rows(v_ir.rows),
    .blocks(v_ir.blocks), .aux(v_ir.aux), .dst(v_ir.dst), .src0(v_ir.src0), .src1(v_ir.src1),
    .src2(v_ir.src2), .mult0(v_ir.mult0), .shift0(v_ir.shift0[5:0]), .mult1(v_ir.mult1),
    .shift1(v_ir.shift1[5:0]), .cs0(v_ir.cs0), .cs1(v_ir.cs1),
    .busy(vec_busy), .done(vec_done),
    .a_re(v_a_re), .a_raddr(v_a_raddr), .a_rdata(v_a_rdata),
    .c_re(v_c_re), .c_raddr(v_c_raddr), .c_rdata(v_c_rdata),
    .w_re(v_w_re), .w_raddr(v_w_raddr), .w_rdata(v_w_rdata),
    .a_we(v_a_we), .a_waddr(v_a_waddr), .a_wbe(v_a_wbe), .a_wdata(v_a_wdata)
  );

  dma_engine #(.N(N)) u_dma (
    .clk, .rst_n, .start(dma_start), .store(ir.op == OP_STORE), .mem(ir.flags[1:0]),
    .rows(ir.rows), .dram_addr(ir.dram), .sram_row((ir.op == OP_STORE) ? ir.src0 : ir.dst),
    .busy(dma_busy), .last_beat(dma_last), .beat(dma_beat), .store_q(dma_store),
    .writes_pending(dma_writes_pending),
    .row(dma_row), .quarter(dma_q), .mem_q(dma_mem), .sram_we(dma_we), .sram_wdata(dma_wdata),
    .rd_row(dma_rd_row), .rd_quarter(dma_rd_q), .rd_mem(dma_rd_mem), .sram_rdata(dma_rline),
    .m_axi_arvalid, .m_axi_arready, .m_axi_araddr, .m_axi_arlen, .m_axi_arsize, .m_axi_arburst,
    .m_axi_rvalid, .m_axi_rready, .m_axi_rdata, .m_axi_rresp, .m_axi_rlast,
    .m_axi_awvalid, .m_axi_awready, .m_axi_awaddr, .m_axi_awlen, .m_axi_awsize, .m_axi_awburst,
    .m_axi_wvalid, .m_axi_wready, .m_axi_wdata, .m_axi_wstrb, .m_axi_wlast,
    .m_axi_bvalid, .m_axi_bready, .m_axi_bresp
  );

  assign retire = {vec_done, gemm_done, dma_last};   // bit UNIT_*

  // The DMA reads A / ACC as a synchronous-SRAM client (a STORE: from its dispatch cycle, the
  // line of the next beat; nothing in the last beat's cycle): the line it addresses arrives a
  // cycle later from the bank's read-data register.
  wire dma_rd_re = (dma_start && ir.op == OP_STORE) || (dma_busy && dma_store && !dma_last);
  logic [1:0] dma_rd_q_d, dma_rd_mem_d;
  always_ff @(posedge clk) begin
    dma_rd_q_d <= dma_rd_q; dma_rd_mem_d <= dma_rd_mem;
  end
  assign dma_rline = (dma_rd_mem_d == MEM_ACC) ? dma_c_rdata[32'(dma_rd_q_d)*N*8 +: N*8] : dma_a_rdata;

  // ---------------- host interface (host_axil.sv) ----------------
  logic        hw_en, hr_en;
  logic [31:0] hw_addr, hw_data, hr_addr;
  logic [31:0] reg_rdata;
  // registers: byte address 4 * index below 0x400; instruction memory: IMEM_BASE onwards
  wire hw_reg = hw_addr < 32'h400 && hw_addr[1:0] == 2'b00;
  wire hr_reg = hr_addr < 32'h400 && hr_addr[1:0] == 2'b00;
  wire hw_imem = hw_addr >= IMEM_BASE && hw_addr < IMEM_BASE + IMEM_DEPTH * INSN_BYTES &&
                 hw_addr[1:0] == 2'b00;
  wire hr_imem = hr_addr >= IMEM_BASE && hr_addr < IMEM_BASE + IMEM_DEPTH * INSN_BYTES &&
                 hr_addr[1:0] == 2'b00;
  wire hw_ok = hw_reg || (hw_imem && !running);   // instruction memory is frozen while running
  wire hr_ok = hr_reg || (hr_imem && !running);
  wire [7:0] reg_addr = hr_addr[9:2];
  wire [7:0] reg_widx = hw_addr[9:2];
  wire reg_we = hw_en && hw_reg;
  wire [31:0] imem_woff = hw_addr - IMEM_BASE;
  wire [31:0] imem_roff = hr_addr - IMEM_BASE;
  // Instruction memory: one synchronous read port (FETCH, or a host read while idle) whose
  // output register is `ir`, and one write port (host, while idle).
  wire imem_host_re = hr_en && hr_imem && !running;
  wire imem_re = (cstate == C_FETCH && pc < IMEM_DEPTH) || imem_host_re;
  wire [IW-1:0] imem_raddr = (cstate == C_FETCH) ? pc[IW-1:0] : imem_roff[IW+4:5];
  always_ff @(posedge clk) if (imem_re) ir <= imem[imem_raddr];
  // a host read's word is taken from `ir` in the R cycle, the one after the address
  logic       hr_imem_q;
  logic [2:0] hr_word_q;
  always_ff @(posedge clk or negedge rst_n)
    if (!rst_n) begin
      hr_imem_q <= 1'b0; hr_word_q <= '0;
    end else if (hr_en) begin
      hr_imem_q <= imem_host_re; hr_word_q <= imem_roff[4:2];
    end
  logic [31:0] axil_rdata;
  assign s_axil_rdata = hr_imem_q ? ir[32'(hr_word_q)*32 +: 32] : axil_rdata;
  host_axil u_host (
    .clk, .rst_n,
    .s_axil_awvalid, .s_axil_awready, .s_axil_awaddr, .s_axil_wvalid, .s_axil_wready,
    .s_axil_wdata, .s_axil_wstrb, .s_axil_bvalid, .s_axil_bready, .s_axil_bresp,
    .s_axil_arvalid, .s_axil_arready, .s_axil_araddr, .s_axil_rvalid, .s_axil_rready,
    .s_axil_rdata(axil_rdata), .s_axil_rresp,
    .wr_en(hw_en), .wr_addr(hw_addr), .wr_data(hw_data), .wr_ok(hw_ok),
    .rd_en(hr_en), .rd_addr(hr_addr), .rd_data(reg_rdata), .rd_ok(hr_ok)
  );
  assign irq = done_flag;
  /* verilator lint_on UNUSEDSIGNAL */

  // ---------------- bank ports ----------------
  // Requests by unit (bit UNIT_*: DMA, GEMM, vector): an enable, and the 16-bit row at
  // [16u +: 16]. Reads: the DMA reads A or ACC (STORE), the GEMM unit and the vector unit one
  // row of each SRAM per cycle at most. Writes: A by a LOAD or the vector unit, W by a LOAD,
  // ACC by a LOAD or the GEMM unit.
  wire dma_a_we = dma_we && dma_mem == MEM_A;
  wire dma_w_we = dma_we && dma_mem == MEM_W;
  wire dma_c_we = dma_we && dma_mem == MEM_ACC;
  wire [2:0]  a_rq = {v_a_re, g_a_re, dma_rd_re && dma_rd_mem == MEM_A};
  wire [47:0] a_rq_row = {v_a_raddr, g_a_raddr, dma_rd_row};
  wire [2:0]  w_rq = {v_w_re, g_w_re, 1'b0};
  wire [47:0] w_rq_row = {v_w_raddr, g_w_raddr, 16'd0};
  wire [2:0]  c_rq = {v_c_re, g_c_re, dma_rd_re && dma_rd_mem == MEM_ACC};
  wire [47:0] c_rq_row = {v_c_raddr, g_c_raddr, dma_rd_row};
  wire [2:0]  a_wq = {v_a_we, 1'b0, dma_a_we};
  wire [47:0] a_wq_row = {v_a_waddr, 16'd0, dma_row};
  wire [2:0]  w_wq = {2'b00, dma_w_we};
  wire [47:0] w_wq_row = {32'd0, dma_row};
  wire [2:0]  c_wq = {1'b0, g_c_we, dma_c_we};
  wire [47:0] c_wq_row = {16'd0, g_c_waddr, dma_row};

  // memory m's bank claims (hazard_unit.sv), by unit: bit 4u + b
  function automatic logic [11:0] claims_of(input logic [35:0] claim, input int m);
    for (int u = 0; u < 3; u++) claims_of[4*u +: 4] = claim[12*u + 4*m +: 4];
  endfunction
  wire [11:0] a_rown = claims_of(rd_claim, 0), w_rown = claims_of(rd_claim, 1),
              c_rown = claims_of(rd_claim, 2);
  wire [11:0] a_wown = claims_of(wr_claim, 0), w_wown = claims_of(wr_claim, 1),
              c_wown = claims_of(wr_claim, 2);

  // the bank of a row of a memory of 2^rbits rows: its top two bits
  function automatic logic [1:0] bank_of(input logic [15:0] row, input int rbits);
    bank_of = 2'(row >> (rbits - 2));
  endfunction
  // bank b's port: the request of the unit that claims it (at most one), enabled when that
  // unit addresses bank b -> {enable, row}; no claim, no access
  function automatic logic [16:0] bank_port(input logic [11:0] own, input logic [2:0] rq,
                                            input logic [47:0] rows, input int rbits,
                                            input int b);
    bank_port = '0;
    for (int u = 0; u < 3; u++)
      if (own[4*u + b])
        bank_port = {rq[u] && bank_of(rows[16*u +: 16], rbits) == 2'(b), rows[16*u +: 16]};
  endfunction

  wire [4*N-1:0] dma_q_be = {{3*N{1'b0}}, {N{1'b1}}} << (32'(dma_q) * N);   // a LOAD's quarter
  // read-data registers of the banks, bank b at [b*W +: W]
  logic [4*N*8-1:0]  a_bank_rd, w_bank_rd;
  logic [4*N*32-1:0] c_bank_rd;
  /* verilator lint_off UNUSEDSIGNAL */  // a port's row: its bank's bits and those above
  for (genvar b = 0; b < 4; b++) begin : g_a
    wire [16:0] rp = bank_port(a_rown, a_rq, a_rq_row, AW, b);
    wire [16:0] wp = bank_port(a_wown, a_wq, a_wq_row, AW, b);
    wire dma_w = a_wown[4*UNIT_DMA + b];   // the bank's writer: a LOAD, else the vector unit
    sram_bank #(.BYTES(N), .DEPTH(A_ROWS / 4)) u_bank (
      .clk, .re(rp[16]), .raddr(rp[AW-3:0]), .rdata(a_bank_rd[b*N*8 +: N*8]),
      .we(wp[16]), .waddr(wp[AW-3:0]), .wbe(dma_w ? {N{1'b1}} : v_a_wbe),
      .wdata(dma_w ? dma_wdata : v_a_wdata));
  end
  for (genvar b = 0; b < 4; b++) begin : g_w
    wire [16:0] rp = bank_port(w_rown, w_rq, w_rq_row, WW, b);
    wire [16:0] wp = bank_port(w_wown, w_wq, w_wq_row, WW, b);
    sram_bank #(.BYTES(N), .DEPTH(W_ROWS / 4)) u_bank (
      .clk, .re(rp[16]), .raddr(rp[WW-3:0]), .rdata(w_bank_rd[b*N*8 +: N*8]),
      .we(wp[16]), .waddr(wp[WW-3:0]), .wbe({N{1'b1}}), .wdata(dma_wdata));
  end
  for (genvar b = 0; b < 4; b++) begin : g_c
    wire [16:0] rp = bank_port(c_rown, c_rq, c_rq_row, CW, b);
    wire [16:0] wp = bank_port(c_wown, c_wq, c_wq_row, CW, b);
    // the bank's writer: a LOAD (one N-byte quarter of a row per beat), else the GEMM unit
    wire dma_w = c_wown[4*UNIT_DMA + b];
    sram_bank #(.BYTES(4 * N), .DEPTH(ACC_ROWS / 4)) u_bank (
      .clk, .re(rp[16]), .raddr(rp[CW-3:0]), .rdata(c_bank_rd[b*N*32 +: N*32]),
      .we(wp[16]), .waddr(wp[CW-3:0]),
      .wbe(dma_w ? dma_q_be : {4*N{1'b1}}),
      .wdata(dma_w ? {4{dma_wdata}} : g_c_wdata));
  end
  /* verilator lint_on UNUSEDSIGNAL */

  // a unit's read data: the read-data register of the bank it addressed in the cycle before
  logic [1:0] dma_a_bq, dma_c_bq, g_a_bq, g_w_bq, g_c_bq, v_a_bq, v_w_bq, v_c_bq;
  always_ff @(posedge clk) begin
    dma_a_bq <= bank_of(dma_rd_row, AW); dma_c_bq <= bank_of(dma_rd_row, CW);
    g_a_bq <= bank_of(g_a_raddr, AW); g_w_bq <= bank_of(g_w_raddr, WW);
    g_c_bq <= bank_of(g_c_raddr, CW);
    v_a_bq <= bank_of(v_a_raddr, AW); v_w_bq <= bank_of(v_w_raddr, WW);
    v_c_bq <= bank_of(v_c_raddr, CW);
  end
  assign dma_a_rdata = a_bank_rd[32'(dma_a_bq)*N*8 +: N*8];
  assign dma_c_rdata = c_bank_rd[32'(dma_c_bq)*N*32 +: N*32];
  assign g_a_rdata = a_bank_rd[32'(g_a_bq)*N*8 +: N*8];
  assign g_w_rdata = w_bank_rd[32'(g_w_bq)*N*8 +: N*8];
  assign g_c_rdata = c_bank_rd[32'(g_c_bq)*N*32 +: N*32];
  assign v_a_rdata = a_bank_rd[32'(v_a_bq)*N*8 +: N*8];
  assign v_w_rdata = w_bank_rd[32'(v_w_bq)*N*8 +: N*8];
  assign v_c_rdata = c_bank_rd[32'(v_c_bq)*N*32 +: N*32];

  always_ff @(posedge clk)
    if (hw_en && hw_imem && !running)
      imem[imem_woff[IW+4:5]][32'(imem_woff[4:2])*32 +: 32] <= hw_data;

  // ---------------- controller + counters ----------------
  wire [1:0] units_busy = 2'(gemm_busy) + 2'(vec_busy) + 2'(dma_busy);
  always_ff @(posedge clk or negedge rst_n) begin
    if (!rst_n) begin
      cstate <= C_IDLE; running <= 1'b0; done_flag <= 1'b0; err_flag <= 1'b0; err_code <= '0;
      pc <= '0; start_pc <= '0; err_pc <= '0;
      {cnt_cycles, cnt_array, cnt_vec, cnt_dma, cnt_stall} <= '0;
      {cnt_bytes_in, cnt_bytes_out, cnt_insns, cnt_overlap, cnt_all_busy} <= '0;
    end else begin
      if (reg_we && reg_widx == REG_START_PC && !running) start_pc <= hw_data;
      if (reg_we && reg_widx == REG_CTRL && hw_data[0] && !running) begin
        running <= 1'b1; done_flag <= 1'b0; err_flag <= 1'b0; err_code <= ERR_NONE;
        pc <= start_pc; cstate <= C_FETCH;
        {cnt_cycles, cnt_array, cnt_vec, cnt_dma, cnt_stall} <= '0;
        {cnt_bytes_in, cnt_bytes_out, cnt_insns, cnt_overlap, cnt_all_busy} <= '0;
      end
      if (running) begin
        cnt_cycles <= cnt_cycles + 64'd1;
        if (gemm_busy) cnt_array <= cnt_array + 64'd1;
        if (vec_busy)  cnt_vec <= cnt_vec + 64'd1;
        if (dma_busy)  cnt_dma <= cnt_dma + 64'd1;
        if (!gemm_busy && !vec_busy && !dma_busy) cnt_stall <= cnt_stall + 64'd1;
        if (units_busy >= 2'd2) cnt_overlap <= cnt_overlap + 64'd1;
        if (units_busy == 2'd3) cnt_all_busy <= cnt_all_busy + 64'd1;
      end
      if (dma_beat) begin
        if (dma_store) cnt_bytes_out <= cnt_bytes_out + 64'(N);
        else           cnt_bytes_in  <= cnt_bytes_in + 64'(N);
      end
      case (cstate)
        C_FETCH: begin
          if (pc >= IMEM_DEPTH) begin
            if (drained) begin
              err_flag <= 1'b1; err_code <= ERR_PC; err_pc <= pc;
              running <= 1'b0; done_flag <= 1'b1; cstate <= C_IDLE;
            end
          end else begin
            cstate <= C_DECODE;   // ir is read this cycle (imem's read port)
          end
        end
        C_DECODE: begin
          // a stop waits for every unit to retire and every write to be acknowledged
          if (dec_err != ERR_NONE) begin
            if (drained) begin
              err_flag <= 1'b1; err_code <= dec_err; err_pc <= pc;
              running <= 1'b0; done_flag <= 1'b1; cstate <= C_IDLE;
            end
          end else if (ir.op == OP_HALT) begin
            if (drained) begin
              cnt_insns <= cnt_insns + 64'd1;
              running <= 1'b0; done_flag <= 1'b1; cstate <= C_IDLE;
            end
          end else if (dispatch) begin
            cnt_insns <= cnt_insns + 64'd1;
            pc <= pc + 32'd1;
            cstate <= C_FETCH;
          end
        end
        default: ;
      endcase
    end
  end

  // register reads
  always_comb begin
    case (reg_addr)
      REG_STATUS:     reg_rdata = {29'd0, err_flag, done_flag, running};
      REG_ERR_CODE:   reg_rdata = {24'd0, err_code};
      REG_PC:         reg_rdata = pc;
      REG_START_PC:   reg_rdata = start_pc;
      REG_ERR_PC:     reg_rdata = err_pc;
      REG_N:          reg_rdata = 32'(N);
      REG_A_ROWS:     reg_rdata = 32'(A_ROWS);
      REG_W_ROWS:     reg_rdata = 32'(W_ROWS);
      REG_ACC_ROWS:   reg_rdata = 32'(ACC_ROWS);
      REG_DRAM_BYTES: reg_rdata = 32'(DRAM_BYTES);
      REG_IMEM_DEPTH: reg_rdata = 32'(IMEM_DEPTH);
      REG_CNT_CYCLES:              reg_rdata = cnt_cycles[31:0];
      REG_CNT_CYCLES + 8'd1:       reg_rdata = cnt_cycles[63:32];
      REG_CNT_ARRAY_BUSY:          reg_rdata = cnt_array[31:0];
      REG_CNT_ARRAY_BUSY + 8'd1:   reg_rdata = cnt_array[63:32];
      REG_CNT_VECTOR_BUSY:         reg_rdata = cnt_vec[31:0];
      REG_CNT_VECTOR_BUSY + 8'd1:  reg_rdata = cnt_vec[63:32];
      REG_CNT_DMA_BUSY:            reg_rdata = cnt_dma[31:0];
      REG_CNT_DMA_BUSY + 8'd1:     reg_rdata = cnt_dma[63:32];
      REG_CNT_STALL:               reg_rdata = cnt_stall[31:0];
      REG_CNT_STALL + 8'd1:        reg_rdata = cnt_stall[63:32];
      REG_CNT_BYTES_IN:            reg_rdata = cnt_bytes_in[31:0];
      REG_CNT_BYTES_IN + 8'd1:     reg_rdata = cnt_bytes_in[63:32];
      REG_CNT_BYTES_OUT:           reg_rdata = cnt_bytes_out[31:0];
      REG_CNT_BYTES_OUT + 8'd1:    reg_rdata = cnt_bytes_out[63:32];
      REG_CNT_INSTRUCTIONS:        reg_rdata = cnt_insns[31:0];
      REG_CNT_INSTRUCTIONS + 8'd1: reg_rdata = cnt_insns[63:32];
      REG_CNT_OVERLAP:             reg_rdata = cnt_overlap[31:0];
      REG_CNT_OVERLAP + 8'd1:      reg_rdata = cnt_overlap[63:32];
      REG_CNT_ALL_BUSY:            reg_rdata = cnt_all_busy[31:0];
      REG_CNT_ALL_BUSY + 8'd1:     reg_rdata = cnt_all_busy[63:32];
      default: reg_rdata = 32'd0;
    endcase
  end

`ifndef SYNTHESIS
  // The bank rules: every request a unit makes falls in a bank whose port its instruction
  // claims (a footprint too small for what the unit touches fails here; hazard_unit.sv checks
  // that no bank port has two owners); a unit is busy only while an instruction is in flight
  // on it.
  function automatic logic claimed(input logic [11:0] own, input logic [2:0] rq,
                                   input logic [47:0] rows, input int rbits, input int u);
    claimed = !rq[u] || own[4*u + 32'(bank_of(rows[16*u +: 16], rbits))];
  endfunction
  always_ff @(posedge clk) if (running) begin
    for (int u = 0; u < 3; u++) begin
      assert (claimed(a_rown, a_rq, a_rq_row, AW, u) && claimed(w_rown, w_rq, w_rq_row, WW, u) &&
              claimed(c_rown, c_rq, c_rq_row, CW, u));
      assert (claimed(a_wown, a_wq, a_wq_row, AW, u) && claimed(w_wown, w_wq, w_wq_row, WW, u) &&
              claimed(c_wown, c_wq, c_wq_row, CW, u));
    end
    assert ((!gemm_busy || inflight[UNIT_GEMM]) && (!vec_busy || inflight[UNIT_VEC]) &&
            (!dma_busy || inflight[UNIT_DMA]));
  end
  initial assert (N % 4 == 0 && N % LANES == 0 && SRAM_BANKS == 4 && AW >= 2 && WW >= 2 && CW >= 2 && (1 << AW) == A_ROWS && (1 << WW) == W_ROWS &&
                  (1 << CW) == ACC_ROWS && (1 << IW) == IMEM_DEPTH);
`endif
endmodule
