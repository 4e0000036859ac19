#include "textflag.h"

// CHUNK ORs the quote, backslash and control-character bits of the 16
// bytes at off(R13) into R10, R11 and R12 (bit off+k for byte k).
#define CHUNK(off) \
	MOVOU off(R13), X0; \
	MOVO X0, X1; \
	PCMPEQB X8, X1; \
	PMOVMSKB X1, AX; \
	SHLQ $off, AX; \
	ORQ AX, R10; \
	MOVO X0, X2; \
	PCMPEQB X9, X2; \
	PMOVMSKB X2, AX; \
	SHLQ $off, AX; \
	ORQ AX, R11; \
	MOVO X0, X3; \
	PMINUB X10, X3; \
	PCMPEQB X0, X3; \
	PMOVMSKB X3, AX; \
	SHLQ $off, AX; \
	ORQ AX, R12

// func strScanSSE2(b []byte, off int, kinds *[256]uint8) (n int, status int)
TEXT ·strScanSSE2(SB), NOSPLIT, $0-56
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), DX
	MOVQ kinds+32(FP), R8
	MOVQ off+24(FP), CX
	MOVQ $-1, AX
	SHLQ CX, AX
	MOVQ AX, X11                   // the bytes of the first block to look at
	XORQ CX, CX                    // start of the block
	XORQ R9, R9                    // 1: the block's first byte is escaped
	MOVQ $0x2222222222222222, AX
	MOVQ AX, X8
	PUNPCKLQDQ X8, X8
	MOVQ $0x5c5c5c5c5c5c5c5c, AX
	MOVQ AX, X9
	PUNPCKLQDQ X9, X9
	MOVQ $0x1f1f1f1f1f1f1f1f, AX
	MOVQ AX, X10
	PUNPCKLQDQ X10, X10

block:
	LEAQ 64(CX), AX
	CMPQ AX, DX
	JHI  more
	LEAQ (SI)(CX*1), R13
	XORQ R10, R10
	XORQ R11, R11
	XORQ R12, R12
	CHUNK(0)
	CHUNK(16)
	CHUNK(32)
	CHUNK(48)
	MOVQ X11, AX
	ANDQ AX, R10
	ANDQ AX, R11
	ANDQ AX, R12
	PCMPEQB X11, X11               // later blocks: all of them

	// Escaped bytes: those after an odd run of backslashes.
	MOVQ R11, AX
	MOVQ R9, BX
	NOTQ BX
	ANDQ BX, AX                    // AX: backslashes that may start an escape
	MOVQ AX, BX
	SHLQ $1, BX
	MOVQ $0xAAAAAAAAAAAAAAAA, DI
	ORQ  DI, BX
	SUBQ AX, BX
	XORQ DI, BX                    // BX: escape and terminal code
	MOVQ R11, DI
	ORQ  R9, DI
	XORQ BX, DI                    // DI: escaped bytes
	ANDQ R11, BX
	SHRQ $63, BX                   // BX: the next block's first byte is escaped

	// The first unescaped quote ends the string.
	MOVQ DI, AX
	NOTQ AX
	ANDQ R10, AX
	TESTQ AX, AX
	JEQ  noquote
	BSFQ AX, R10                   // R10: index of the quote
	MOVQ AX, R11
	NEGQ R11
	ANDQ AX, R11
	DECQ R11                       // R11: the bytes before it
	JMP  check

noquote:
	MOVQ $-1, R10
	MOVQ $-1, R11

check:
	TESTQ R12, R11
	JNE  invalid                   // a control character in the string
	ANDQ R11, DI

escapes:
	TESTQ DI, DI
	JEQ  checked
	BSFQ DI, AX
	MOVBQZX (R13)(AX*1), AX
	MOVBQZX (R8)(AX*1), AX
	CMPQ AX, $1
	JNE  notsimple
	LEAQ -1(DI), AX
	ANDQ AX, DI
	JMP  escapes

notsimple:
	TESTQ AX, AX
	JEQ  invalid
	// A \u escape: the caller scans this block (from the backslash that
	// escapes its first byte, if one does).
	SUBQ R9, CX
	MOVQ CX, n+40(FP)
	MOVQ $2, status+48(FP)
	RET

checked:
	CMPQ R10, $-1
	JEQ  next
	LEAQ 1(CX)(R10*1), AX
	MOVQ AX, n+40(FP)
	MOVQ $1, status+48(FP)
	RET

next:
	MOVQ BX, R9
	ADDQ $64, CX
	JMP  block

more:
	SUBQ R9, CX
	MOVQ CX, n+40(FP)
	MOVQ $2, status+48(FP)
	RET

invalid:
	MOVQ $0, n+40(FP)
	MOVQ $0, status+48(FP)
	RET


// CHUNK32 is CHUNK for the 32 bytes at off(R13), with AVX2.
#define CHUNK32(off) \
	VMOVDQU off(R13), Y0; \
	VPCMPEQB Y8, Y0, Y1; \
	VPMOVMSKB Y1, AX; \
	SHLQ $off, AX; \
	ORQ AX, R10; \
	VPCMPEQB Y9, Y0, Y2; \
	VPMOVMSKB Y2, AX; \
	SHLQ $off, AX; \
	ORQ AX, R11; \
	VPMINUB Y10, Y0, Y3; \
	VPCMPEQB Y0, Y3, Y3; \
	VPMOVMSKB Y3, AX; \
	SHLQ $off, AX; \
	ORQ AX, R12

// ESC32 ORs into R12 a bit for each of the 32 bytes at off(R13) that is
// not one of the one-byte escapes " / \ b f n r t: a byte is one when
// escHi[its high nibble] & escLo[its low nibble] is not zero (Y11: escLo,
// Y12: escHi, Y13: 0x0f in every byte, Y14: zero).
#define ESC32(off) \
	VMOVDQU off(R13), Y0; \
	VPAND Y13, Y0, Y1; \
	VPSRLW $4, Y0, Y2; \
	VPAND Y13, Y2, Y2; \
	VPSHUFB Y1, Y11, Y1; \
	VPSHUFB Y2, Y12, Y2; \
	VPAND Y1, Y2, Y1; \
	VPCMPEQB Y14, Y1, Y1; \
	VPMOVMSKB Y1, AX; \
	SHLQ $off, AX; \
	ORQ AX, R12

// High nibbles 2, 5, 6, 7 are bits 1, 2, 4, 8; escLo[l] holds the bits of
// the high nibbles h for which the byte h<<4|l is an escape.
DATA escLo<>+0(SB)/8, $0x00040008000d0000
DATA escLo<>+8(SB)/8, $0x0104000200000000
DATA escLo<>+16(SB)/8, $0x00040008000d0000
DATA escLo<>+24(SB)/8, $0x0104000200000000
GLOBL escLo<>(SB), RODATA|NOPTR, $32
DATA escHi<>+0(SB)/8, $0x0804020000010000
DATA escHi<>+8(SB)/8, $0
DATA escHi<>+16(SB)/8, $0x0804020000010000
DATA escHi<>+24(SB)/8, $0
GLOBL escHi<>(SB), RODATA|NOPTR, $32

// func strScanAVX2(b []byte, off int, kinds *[256]uint8) (n int, status int)
// The same as strScanSSE2, 32 bytes per instruction; R8 holds the mask of
// the bytes to look at (kinds is loaded when an escape needs it).
TEXT ·strScanAVX2(SB), NOSPLIT, $0-56
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), DX
	MOVQ off+24(FP), CX
	MOVQ $-1, R8
	SHLQ CX, R8
	XORQ CX, CX
	XORQ R9, R9
	MOVQ $0x22, AX
	VMOVQ AX, X8
	VPBROADCASTB X8, Y8
	MOVQ $0x5c, AX
	VMOVQ AX, X9
	VPBROADCASTB X9, Y9
	MOVQ $0x1f, AX
	VMOVQ AX, X10
	VPBROADCASTB X10, Y10
	VMOVDQU escLo<>(SB), Y11
	VMOVDQU escHi<>(SB), Y12
	MOVQ $0x0f, AX
	VMOVQ AX, X13
	VPBROADCASTB X13, Y13
	VPXOR Y14, Y14, Y14

vblock:
	LEAQ 64(CX), AX
	CMPQ AX, DX
	JHI  vmore
	LEAQ (SI)(CX*1), R13
	XORQ R10, R10
	XORQ R11, R11
	XORQ R12, R12
	CHUNK32(0)
	CHUNK32(32)
	ANDQ R8, R10
	ANDQ R8, R11
	ANDQ R8, R12
	MOVQ $-1, R8

	MOVQ R11, AX
	MOVQ R9, BX
	NOTQ BX
	ANDQ BX, AX
	MOVQ AX, BX
	SHLQ $1, BX
	MOVQ $0xAAAAAAAAAAAAAAAA, DI
	ORQ  DI, BX
	SUBQ AX, BX
	XORQ DI, BX
	MOVQ R11, DI
	ORQ  R9, DI
	XORQ BX, DI
	ANDQ R11, BX
	SHRQ $63, BX

	MOVQ DI, AX
	NOTQ AX
	ANDQ R10, AX
	TESTQ AX, AX
	JEQ  vnoquote
	BSFQ AX, R10
	MOVQ AX, R11
	NEGQ R11
	ANDQ AX, R11
	DECQ R11
	JMP  vcheck

vnoquote:
	MOVQ $-1, R10
	MOVQ $-1, R11

vcheck:
	TESTQ R12, R11
	JNE  vinvalid
	ANDQ R11, DI                   // DI: the escaped bytes to check
	JEQ  vchecked
	XORQ R12, R12
	ESC32(0)
	ESC32(32)
	TESTQ DI, R12
	JEQ  vchecked                  // all of them one-byte escapes
	MOVQ kinds+32(FP), R12         // else one by one: \u, or invalid

vescapes:
	TESTQ DI, DI
	JEQ  vchecked
	BSFQ DI, AX
	MOVBQZX (R13)(AX*1), AX
	MOVBQZX (R12)(AX*1), AX
	CMPQ AX, $1
	JNE  vnotsimple
	LEAQ -1(DI), AX
	ANDQ AX, DI
	JMP  vescapes

vnotsimple:
	TESTQ AX, AX
	JEQ  vinvalid
	SUBQ R9, CX
	MOVQ CX, n+40(FP)
	MOVQ $2, status+48(FP)
	VZEROUPPER
	RET

vchecked:
	CMPQ R10, $-1
	JEQ  vnext
	LEAQ 1(CX)(R10*1), AX
	MOVQ AX, n+40(FP)
	MOVQ $1, status+48(FP)
	VZEROUPPER
	RET

vnext:
	MOVQ BX, R9
	ADDQ $64, CX
	JMP  vblock

vmore:
	SUBQ R9, CX
	MOVQ CX, n+40(FP)
	MOVQ $2, status+48(FP)
	VZEROUPPER
	RET

vinvalid:
	MOVQ $0, n+40(FP)
	MOVQ $0, status+48(FP)
	VZEROUPPER
	RET

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv0() (eax uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-4
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	RET
