/* Declarations of the two liblz4 functions Verilator's FST writer calls. Used only when the
 * system has the liblz4 runtime but not its development header (see hw_offload/build.py). */
#ifndef HW_OFFLOAD_LZ4_SHIM_H
#define HW_OFFLOAD_LZ4_SHIM_H
#ifdef __cplusplus
extern "C" {
#endif
int LZ4_compressBound(int inputSize);
int LZ4_compress_default(const char* src, char* dst, int srcSize, int dstCapacity);
#ifdef __cplusplus
}
#endif
#endif
