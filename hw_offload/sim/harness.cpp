// C ABI over the Verilated accelerator, loaded by hw_offload/driver.py through ctypes.
//
// Every entry point validates its arguments and returns a negative status with a message
// (accel_last_error) instead of touching memory it should not: Python must never segfault.
//
// The host talks to the accelerator over its AXI4-Lite slave (registers at byte address
// 4 * index, instruction memory at kImemBase) and learns that a run ended from its `irq`
// line, as a driver with an interrupt would. DRAM lives here, outside the accelerator: `Memory` answers the DMA engine's AXI4 master port
// (m_axi_*) with a latency and a bandwidth set at run time (accel_set_memory_timing), and the
// host reads and writes it directly.
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "Vaccel_top.h"
#include "verilated.h"
// A build has at most one waveform format: --trace-fst (VM_TRACE_FST) or --trace (VM_TRACE_VCD).
#if VM_TRACE_FST
#include "verilated_fst_c.h"
using TraceFile = VerilatedFstC;
constexpr const char* kTraceFormat = "fst";
#elif VM_TRACE_VCD
#include "verilated_vcd_c.h"
using TraceFile = VerilatedVcdC;
constexpr const char* kTraceFormat = "vcd";
#else
constexpr const char* kTraceFormat = "";
#endif

namespace {

// Copies of rtl/accel_pkg.sv's IMEM_BASE, INSN_BYTES and REG_*; tests/test_hw_constants.py
// holds them to the package.
constexpr uint32_t kImemBase = 0x80000000u;
constexpr uint32_t kInsnBytes = 32u;
enum Reg : uint8_t { kCtrl = 0x00, kStatus = 0x01, kPc = 0x03, kN = 0x06, kDramBytes = 0x0A,
                     kImemDepth = 0x0B };

// An AXI data port of any width as little-endian bytes: Verilator gives <= 32 bits as
// uint32_t, <= 64 as uint64_t and wider ones as VlWide<words>.
inline void to_port(uint32_t& p, const uint8_t* b, size_t n) { p = 0; std::memcpy(&p, b, n); }
inline void to_port(uint64_t& p, const uint8_t* b, size_t n) { p = 0; std::memcpy(&p, b, n); }
template <std::size_t W>
void to_port(VlWide<W>& p, const uint8_t* b, size_t n) {
  for (size_t i = 0; i < W; ++i) {
    uint32_t w = 0;
    if (4 * i < n) std::memcpy(&w, b + 4 * i, std::min<size_t>(4, n - 4 * i));
    p[i] = w;
  }
}
inline void from_port(uint32_t p, uint8_t* b, size_t n) { std::memcpy(b, &p, n); }
inline void from_port(uint64_t p, uint8_t* b, size_t n) { std::memcpy(b, &p, n); }
template <std::size_t W>
void from_port(const VlWide<W>& p, uint8_t* b, size_t n) {
  for (size_t i = 0; i < W && 4 * i < n; ++i) {
    uint32_t w = p[i];
    std::memcpy(b + 4 * i, &w, std::min<size_t>(4, n - 4 * i));
  }
}

// DRAM behind the AXI4 port. A burst accepted (AR or AW handshake) in cycle t is served in
// request order: its first R beat can go in cycle t + 1 + latency, then one beat every
// ceil(N / bytes_per_cycle) cycles (a beat is one N-byte line, so at most one a cycle); W
// beats are taken at the same rate and the B response goes latency + 1 cycles after a
// burst's last W beat. The pacing restarts when a channel has nothing queued. Requests are
// always accepted (arready = awready = 1). hw_offload/cycle_model.py predicts the DMA cycles
// this gives; ISA.md ("DRAM and the AXI4 port") states the rules.
struct Burst {
  uint64_t addr;       // next beat's byte address
  uint32_t beats_left;
  uint64_t ready_at;   // first cycle a beat (R) may go
};

struct Memory {
  std::vector<uint8_t> bytes;
  uint32_t beat_bytes = 0;          // N
  uint64_t latency = 0;
  uint64_t beat_cycles = 1;         // cycles per beat
  std::deque<Burst> reads, writes;  // accepted, not yet finished
  std::deque<uint64_t> acks;        // B responses: the cycle each may go
  uint64_t r_next = 0, w_next = 0;  // earliest cycle of the next R / W beat
  std::string protocol_error;       // set when the master breaks a rule; fails the run

  void set_timing(uint64_t lat, uint64_t bytes_per_cycle) {
    latency = lat;
    beat_cycles = (beat_bytes + bytes_per_cycle - 1) / bytes_per_cycle;
    if (beat_cycles == 0) beat_cycles = 1;
  }
  void clear() {
    reads.clear();
    writes.clear();
    acks.clear();
    r_next = w_next = 0;
  }
  bool in_range(uint64_t addr, uint64_t n) const { return addr + n <= bytes.size(); }
};

// Drive the memory side of the AXI4 port for cycle `now` (before the clock edge).
void drive(Vaccel_top* top, const Memory& m, uint64_t now) {
  top->m_axi_arready = 1;
  top->m_axi_awready = 1;
  bool r = !m.reads.empty() && now >= m.reads.front().ready_at && now >= m.r_next;
  top->m_axi_rvalid = r;
  top->m_axi_rresp = 0;
  top->m_axi_rlast = r && m.reads.front().beats_left == 1;
  if (r && m.in_range(m.reads.front().addr, m.beat_bytes))
    to_port(top->m_axi_rdata, &m.bytes[m.reads.front().addr], m.beat_bytes);
  top->m_axi_wready = !m.writes.empty() && now >= m.w_next;
  top->m_axi_bvalid = !m.acks.empty() && now >= m.acks.front();
  top->m_axi_bresp = 0;
}

// Take this cycle's handshakes (sampled before the clock edge) into the memory.
struct Handshakes {
  bool ar, r, aw, w, b;
  uint64_t ar_addr, aw_addr;
  uint32_t ar_beats, aw_beats;
  bool wlast;
  std::vector<uint8_t> wdata;
  uint64_t wstrb;
};

Handshakes sample(Vaccel_top* top, const Memory& m) {
  Handshakes h{};
  h.ar = top->m_axi_arvalid && top->m_axi_arready;
  h.r = top->m_axi_rvalid && top->m_axi_rready;
  h.aw = top->m_axi_awvalid && top->m_axi_awready;
  h.w = top->m_axi_wvalid && top->m_axi_wready;
  h.b = top->m_axi_bvalid && top->m_axi_bready;
  h.ar_addr = top->m_axi_araddr;
  h.ar_beats = uint32_t(top->m_axi_arlen) + 1;
  h.aw_addr = top->m_axi_awaddr;
  h.aw_beats = uint32_t(top->m_axi_awlen) + 1;
  if (h.w) {
    h.wdata.resize(m.beat_bytes);
    from_port(top->m_axi_wdata, h.wdata.data(), m.beat_bytes);
    h.wstrb = uint64_t(top->m_axi_wstrb);
    h.wlast = top->m_axi_wlast;
  }
  return h;
}

void update(Memory& m, const Handshakes& h, uint64_t now, uint32_t arsize, uint32_t awsize) {
  auto bad = [&](const std::string& what) {
    if (m.protocol_error.empty()) m.protocol_error = what + " at cycle " + std::to_string(now);
  };
  // requests first, so a burst accepted in the cycle its predecessor ends keeps the pacing
  if (h.ar) {
    if ((1u << arsize) != m.beat_bytes) bad("AR size is not one N-byte beat");
    if (!m.in_range(h.ar_addr, uint64_t(h.ar_beats) * m.beat_bytes)) bad("AR burst outside DRAM");
    m.reads.push_back({h.ar_addr, h.ar_beats, now + 1 + m.latency});
  }
  if (h.aw) {
    if ((1u << awsize) != m.beat_bytes) bad("AW size is not one N-byte beat");
    if (!m.in_range(h.aw_addr, uint64_t(h.aw_beats) * m.beat_bytes)) bad("AW burst outside DRAM");
    m.writes.push_back({h.aw_addr, h.aw_beats, 0});
  }
  if (h.r) {
    Burst& f = m.reads.front();
    f.addr += m.beat_bytes;
    m.r_next = now + m.beat_cycles;
    if (--f.beats_left == 0) m.reads.pop_front();
    if (m.reads.empty()) m.r_next = 0;
  }
  if (h.w) {
    Burst& f = m.writes.front();
    if (m.in_range(f.addr, m.beat_bytes))
      for (uint32_t i = 0; i < m.beat_bytes; ++i)
        if ((h.wstrb >> i) & 1u) m.bytes[f.addr + i] = h.wdata[i];
    f.addr += m.beat_bytes;
    m.w_next = now + m.beat_cycles;
    bool last = --f.beats_left == 0;
    if (last != h.wlast) bad("WLAST does not end the burst where AWLEN said");
    if (last) {
      m.writes.pop_front();
      m.acks.push_back(now + 1 + m.latency);
    }
    if (m.writes.empty()) m.w_next = 0;
  }
  if (h.b) m.acks.pop_front();
}

struct Sim {
  std::unique_ptr<VerilatedContext> ctx;
  std::unique_ptr<Vaccel_top> top;
#if VM_TRACE
  std::unique_ptr<TraceFile> trace;
#endif
  std::string error;
  uint64_t time = 0;
  uint64_t cycle = 0;      // clock cycles since creation: the memory model's time base
  uint32_t dram_bytes = 0;
  uint32_t imem_bytes = 0;
  Memory mem;

  void tick() {
    drive(top.get(), mem, cycle);
    top->clk = 0;
    top->eval();
    dump();
    Handshakes h = sample(top.get(), mem);
    uint32_t arsize = top->m_axi_arsize, awsize = top->m_axi_awsize;
    top->clk = 1;
    top->eval();
    dump();
    update(mem, h, cycle, arsize, awsize);
    ++cycle;
  }
  void dump() {
#if VM_TRACE
    if (trace) trace->dump(time);
#endif
    ++time;
  }
  bool in_run = false;     // a run was started and its irq has not been seen yet

  // One AXI4-Lite write: host_axil takes address and data in the first cycle (no B is ever
  // left pending) and answers in the second. -> the response, 0 = OKAY.
  uint32_t axil_write(uint32_t addr, uint32_t data) {
    top->s_axil_awaddr = addr;
    top->s_axil_wdata = data;
    top->s_axil_wstrb = 0xF;
    top->s_axil_awvalid = 1;
    top->s_axil_wvalid = 1;
    tick();
    top->s_axil_awvalid = 0;
    top->s_axil_wvalid = 0;
    uint32_t resp = top->s_axil_bvalid ? top->s_axil_bresp : 0x4;  // 4: no response
    top->s_axil_bready = 1;
    tick();
    top->s_axil_bready = 0;
    return resp;
  }
  // One AXI4-Lite read (two cycles). -> the response, 0 = OKAY; the word in *out.
  uint32_t axil_read(uint32_t addr, uint32_t* out) {
    top->s_axil_araddr = addr;
    top->s_axil_arvalid = 1;
    tick();
    top->s_axil_arvalid = 0;
    uint32_t resp = top->s_axil_rvalid ? top->s_axil_rresp : 0x4;
    *out = top->s_axil_rdata;
    top->s_axil_rready = 1;
    tick();
    top->s_axil_rready = 0;
    return resp;
  }
  uint32_t reg(uint8_t index) {
    uint32_t v = 0;
    axil_read(uint32_t(index) * 4u, &v);
    return v;
  }
  bool in_dram(uint64_t addr, uint64_t n) const { return addr + n <= dram_bytes; }
  bool in_imem(uint64_t addr, uint64_t n) const {
    return addr >= kImemBase && addr + n <= uint64_t(kImemBase) + imem_bytes;
  }
};

int fail(Sim* s, const std::string& msg) {
  s->error = msg;
  return -1;
}

}  // namespace

extern "C" {

void* accel_create() {
  auto* s = new Sim();
  s->ctx = std::make_unique<VerilatedContext>();
  s->ctx->fatalOnError(false);  // a failed assertion is reported, never exit()s the host process
#if VM_TRACE
  s->ctx->traceEverOn(true);  // must precede model construction for trace() to work later
#endif
  s->top = std::make_unique<Vaccel_top>(s->ctx.get(), "top");
  s->top->s_axil_awvalid = s->top->s_axil_wvalid = s->top->s_axil_bready = 0;
  s->top->s_axil_arvalid = s->top->s_axil_rready = 0;
  s->top->rst_n = 0;
  for (int i = 0; i < 4; ++i) s->tick();
  s->top->rst_n = 1;
  s->tick();
  s->dram_bytes = s->reg(kDramBytes);
  s->imem_bytes = s->reg(kImemDepth) * kInsnBytes;
  s->mem.bytes.assign(s->dram_bytes, 0);
  s->mem.beat_bytes = s->reg(kN);
  s->mem.set_timing(0, s->mem.beat_bytes);
  return s;
}

void accel_destroy(void* h) {
  auto* s = static_cast<Sim*>(h);
  if (!s) return;
#if VM_TRACE
  if (s->trace) s->trace->close();
#endif
  s->top->final();
  delete s;
}

const char* accel_last_error(void* h) { return h ? static_cast<Sim*>(h)->error.c_str() : "null handle"; }

int accel_write_mem(void* h, uint64_t addr, const uint8_t* data, uint64_t n) {
  auto* s = static_cast<Sim*>(h);
  if (!s || !data) return -1;
  if (addr % 4 || n % 4) return fail(s, "address and length must be multiples of 4");
  bool dram = s->in_dram(addr, n);
  if (!dram && !s->in_imem(addr, n)) return fail(s, "range outside DRAM and instruction memory");
  if (s->in_run) return fail(s, "accelerator is running");
  if (dram) {
    std::memcpy(&s->mem.bytes[addr], data, n);
    return 0;
  }
  for (uint64_t i = 0; i < n; i += 4) {
    uint32_t w;
    std::memcpy(&w, data + i, 4);
    if (s->axil_write(uint32_t(addr + i), w) != 0)
      return fail(s, "the accelerator refused an instruction-memory write (SLVERR)");
  }
  return 0;
}

int accel_read_mem(void* h, uint64_t addr, uint8_t* out, uint64_t n) {
  auto* s = static_cast<Sim*>(h);
  if (!s || !out) return -1;
  if (addr % 4 || n % 4) return fail(s, "address and length must be multiples of 4");
  if (s->in_dram(addr, n)) {
    std::memcpy(out, &s->mem.bytes[addr], n);
    return 0;
  }
  if (!s->in_imem(addr, n)) return fail(s, "range outside DRAM and instruction memory");
  if (s->in_run) return fail(s, "accelerator is running");
  for (uint64_t i = 0; i < n; i += 4) {
    uint32_t w = 0;
    if (s->axil_read(uint32_t(addr + i), &w) != 0)
      return fail(s, "the accelerator refused an instruction-memory read (SLVERR)");
    std::memcpy(out + i, &w, 4);
  }
  return 0;
}

// The off-chip memory's timing: `latency` cycles between a burst request and its first beat
// (beyond the one cycle AXI needs), `bytes_per_cycle` of bandwidth (>= 1; N or more means a
// beat every cycle). Only while idle.
int accel_set_memory_timing(void* h, uint64_t latency, uint64_t bytes_per_cycle) {
  auto* s = static_cast<Sim*>(h);
  if (!s) return -1;
  if (bytes_per_cycle == 0) return fail(s, "bytes_per_cycle must be >= 1");
  if (latency > 1000000) return fail(s, "latency must be <= 1000000 cycles");
  if (s->in_run) return fail(s, "accelerator is running");
  s->mem.set_timing(latency, bytes_per_cycle);
  return 0;
}

int accel_write_reg(void* h, uint32_t addr, uint32_t value) {
  auto* s = static_cast<Sim*>(h);
  if (!s) return -1;
  if (addr > 0xFF) return fail(s, "register index must be < 256");
  if (s->axil_write(addr * 4u, value) != 0) return fail(s, "register write refused (SLVERR)");
  if (addr == kCtrl && (value & 1u)) s->in_run = true;   // ignored if one was running: still is
  return 0;
}

int accel_read_reg(void* h, uint32_t addr, uint32_t* value) {
  auto* s = static_cast<Sim*>(h);
  if (!s || !value) return -1;
  if (addr > 0xFF) return fail(s, "register index must be < 256");
  if (s->axil_read(addr * 4u, value) != 0) return fail(s, "register read refused (SLVERR)");
  return 0;
}

// Clock a started run until its irq line rises or max_cycles more cycles.
// Returns 0 when done (check STATUS.error) or when no run was started, 1 on cycle limit
// (still running), -1 on bad input or a simulation error.
int accel_resume(void* h, uint64_t max_cycles, uint64_t* cycles_run) {
  auto* s = static_cast<Sim*>(h);
  if (!s || !cycles_run) return -1;
  *cycles_run = 0;
  uint64_t n = 0;
  while (s->in_run && !s->top->irq) {
    if (n >= max_cycles) {
      *cycles_run = n;
      return 1;
    }
    s->tick();
    ++n;
    if (!s->mem.protocol_error.empty()) {
      *cycles_run = n;
      std::string e = "AXI protocol error: " + s->mem.protocol_error;
      s->mem.protocol_error.clear();
      return fail(s, e);
    }
    if (s->ctx->gotError()) {
      *cycles_run = n;
      return fail(s, std::string("simulation error (assertion failed) at pc ") +
                         std::to_string(s->reg(kPc)));
    }
  }
  s->in_run = false;
  *cycles_run = n;
  return 0;
}

// Start at the START_PC register (an AXI4-Lite write of CTRL: two cycles, the second already
// the run's first) and clock until irq or max_cycles in all. Same return codes as
// accel_resume; after 1 the run can be resumed.
int accel_run(void* h, uint64_t max_cycles, uint64_t* cycles_run) {
  auto* s = static_cast<Sim*>(h);
  if (!s || !cycles_run) return -1;
  *cycles_run = 0;
  if (s->in_run) return fail(s, "accelerator is running");
  if (accel_write_reg(h, kCtrl, 1u) != 0) return -1;
  constexpr uint64_t kStartCycles = 2;
  if (max_cycles <= kStartCycles) {
    *cycles_run = kStartCycles;
    return s->top->irq ? 0 : 1;
  }
  int rc = accel_resume(h, max_cycles - kStartCycles, cycles_run);
  *cycles_run += kStartCycles;
  return rc;
}

// 1 while the accelerator's irq (done) line is high.
int accel_irq(void* h) {
  auto* s = static_cast<Sim*>(h);
  return s ? int(s->top->irq) : -1;
}

// Reset the control state (after a cycle-limit stop) so the next run can start; memories keep
// their contents.
int accel_reset(void* h) {
  auto* s = static_cast<Sim*>(h);
  if (!s) return -1;
  s->top->rst_n = 0;
  s->tick();
  s->mem.clear();  // the DMA engine forgot its bursts: so does the memory
  s->in_run = false;
  s->top->rst_n = 1;
  s->tick();
  return 0;
}

int accel_trace_open(void* h, const char* path) {
  auto* s = static_cast<Sim*>(h);
  if (!s || !path) return -1;
#if VM_TRACE
  if (s->trace) return fail(s, "a trace is already open");
  s->trace = std::make_unique<TraceFile>();
  s->top->trace(s->trace.get(), 99);
  s->trace->open(path);
  if (!s->trace->isOpen()) {
    s->trace.reset();
    return fail(s, std::string("cannot open trace file ") + path);
  }
  return 0;
#else
  return fail(s, "this build has no trace support (built without --trace-fst or --trace)");
#endif
}

// "fst", "vcd", or "" when the build has no tracing compiled in.
const char* accel_trace_format() { return kTraceFormat; }

int accel_trace_close(void* h) {
  auto* s = static_cast<Sim*>(h);
  if (!s) return -1;
#if VM_TRACE
  if (s->trace) {
    s->trace->close();
    s->trace.reset();
  }
#endif
  return 0;
}

}  // extern "C"
