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

// func strScan(b []byte, kinds *[256]uint8) (n int, status int)
TEXT ·strScan(SB), NOSPLIT, $0-48
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), DX
	MOVQ kinds+24(FP), R8
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
	MOVQ CX, n+32(FP)
	MOVQ $2, status+40(FP)
	RET

checked:
	CMPQ R10, $-1
	JEQ  next
	LEAQ 1(CX)(R10*1), AX
	MOVQ AX, n+32(FP)
	MOVQ $1, status+40(FP)
	RET

next:
	MOVQ BX, R9
	ADDQ $64, CX
	JMP  block

more:
	SUBQ R9, CX
	MOVQ CX, n+32(FP)
	MOVQ $2, status+40(FP)
	RET

invalid:
	MOVQ $0, n+32(FP)
	MOVQ $0, status+40(FP)
	RET
