// C ABI over the Verilated accelerator, loaded by hw_offload/driver.py through ctypes.
//
// Every entry point validates its arguments and returns a negative status with a message
// (accel_last_error) instead of touching memory it should not: Python must never segfault.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

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
enum Reg : uint8_t { kCtrl = 0x00, kStatus = 0x01, kPc = 0x03, kDramBytes = 0x0A,
                     kImemDepth = 0x0B };

struct Sim {
  std::unique_ptr<VerilatedContext> ctx;
  std::unique_ptr<Vaccel_top> top;
#if VM_TRACE
  std::unique_ptr<TraceFile> trace;
#endif
  std::string error;
  uint64_t time = 0;
  uint32_t dram_bytes = 0;
  uint32_t imem_bytes = 0;

  void tick() {
    top->clk = 0;
    top->eval();
    dump();
    top->clk = 1;
    top->eval();
    dump();
  }
  void dump() {
#if VM_TRACE
    if (trace) trace->dump(time);
#endif
    ++time;
  }
  uint32_t reg(uint8_t addr) {
    top->reg_addr = addr;
    top->eval();
    return top->reg_rdata;
  }
  // Host window check: [addr, addr+n) must lie in DRAM or in instruction memory.
  bool in_window(uint64_t addr, uint64_t n) const {
    if (addr + n <= dram_bytes) return true;
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
  s->top->host_we = 0;
  s->top->reg_we = 0;
  s->top->rst_n = 0;
  for (int i = 0; i < 4; ++i) s->tick();
  s->top->rst_n = 1;
  s->tick();
  s->dram_bytes = s->reg(kDramBytes);
  s->imem_bytes = s->reg(kImemDepth) * kInsnBytes;
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
  if (!s->in_window(addr, n)) return fail(s, "range outside DRAM and instruction memory");
  if (s->reg(kStatus) & 1u) return fail(s, "accelerator is running");
  for (uint64_t i = 0; i < n; i += 4) {
    uint32_t w;
    std::memcpy(&w, data + i, 4);
    s->top->host_addr = uint32_t(addr + i);
    s->top->host_wdata = w;
    s->top->host_we = 1;
    s->tick();
  }
  s->top->host_we = 0;
  return 0;
}

int accel_read_mem(void* h, uint64_t addr, uint8_t* out, uint64_t n) {
  auto* s = static_cast<Sim*>(h);
  if (!s || !out) return -1;
  if (addr % 4 || n % 4) return fail(s, "address and length must be multiples of 4");
  if (!s->in_window(addr, n)) return fail(s, "range outside DRAM and instruction memory");
  for (uint64_t i = 0; i < n; i += 4) {
    s->top->host_addr = uint32_t(addr + i);
    s->top->eval();
    uint32_t w = s->top->host_rdata;
    std::memcpy(out + i, &w, 4);
  }
  return 0;
}

int accel_write_reg(void* h, uint32_t addr, uint32_t value) {
  auto* s = static_cast<Sim*>(h);
  if (!s) return -1;
  if (addr > 0xFF) return fail(s, "register index must be < 256");
  s->top->reg_addr = uint8_t(addr);
  s->top->reg_wdata = value;
  s->top->reg_we = 1;
  s->tick();
  s->top->reg_we = 0;
  return 0;
}

int accel_read_reg(void* h, uint32_t addr, uint32_t* value) {
  auto* s = static_cast<Sim*>(h);
  if (!s || !value) return -1;
  if (addr > 0xFF) return fail(s, "register index must be < 256");
  *value = s->reg(uint8_t(addr));
  return 0;
}

// Clock a started run until STATUS.done or max_cycles more cycles.
// Returns 0 when done (check STATUS.error), 1 on cycle limit (still running), -1 on bad input.
int accel_resume(void* h, uint64_t max_cycles, uint64_t* cycles_run) {
  auto* s = static_cast<Sim*>(h);
  if (!s || !cycles_run) return -1;
  *cycles_run = 0;
  uint64_t n = 0;
  while (true) {
    uint32_t status = s->reg(kStatus);
    if (!(status & 1u)) break;
    if (n >= max_cycles) {
      *cycles_run = n;
      return 1;
    }
    s->tick();
    ++n;
    if (s->ctx->gotError()) {
      *cycles_run = n;
      return fail(s, std::string("simulation error (assertion failed) at pc ") +
                         std::to_string(s->reg(kPc)));
    }
  }
  *cycles_run = n;
  return 0;
}

// Start at the START_PC register and clock until STATUS.done or max_cycles (the start write
// itself is the first cycle). Same return codes as accel_resume; after 1 the run can be resumed.
int accel_run(void* h, uint64_t max_cycles, uint64_t* cycles_run) {
  auto* s = static_cast<Sim*>(h);
  if (!s || !cycles_run) return -1;
  *cycles_run = 0;
  if (accel_write_reg(h, kCtrl, 1u) != 0) return -1;
  if (max_cycles <= 1) {
    *cycles_run = 1;
    return (s->reg(kStatus) & 1u) ? 1 : 0;
  }
  int rc = accel_resume(h, max_cycles - 1, cycles_run);
  *cycles_run += 1;
  return rc;
}

// Reset the control state (after a cycle-limit stop) so the next run can start; memories keep
// their contents.
int accel_reset(void* h) {
  auto* s = static_cast<Sim*>(h);
  if (!s) return -1;
  s->top->rst_n = 0;
  s->tick();
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
