/*
 * A stand-in bcryptprimitives.dll for Wine 8, which lacks it.
 *
 * Rust's std (since 1.78) imports ProcessPrng from bcryptprimitives.dll on
 * Windows to seed HashMap keys and similar; a Windows binary whose import
 * cannot be resolved does not start (status c0000135). This DLL exports
 * that one function, filled by RtlGenRandom (advapi32's SystemFunction036),
 * which Wine implements. It is only for running the test suite under Wine
 * in CI; real Windows (10 and later) ships the real DLL.
 *
 * Build: x86_64-w64-mingw32-gcc -O2 -shared -o bcryptprimitives.dll \
 *          bcryptprimitives.c bcryptprimitives.def -ladvapi32
 */
#include <windows.h>

/* advapi32!SystemFunction036 is RtlGenRandom; it takes a ULONG length. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    /* ProcessPrng takes a SIZE_T; RtlGenRandom a ULONG: fill in chunks. */
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst;
    (void)reason;
    (void)reserved;
    return TRUE;
}
