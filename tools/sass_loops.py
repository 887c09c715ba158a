#!/usr/bin/env python3
"""Loops of one kernel's SASS and the opcodes in each, from `cuobjdump -sass` text.

A loop is the address range from a backward branch's target to the branch. Prints the kernel's
instruction count, then one line per loop (innermost and outer alike, largest last) with its
instruction count and opcode histogram, so that a change to a hot loop can be counted without a
GPU (scripts/sass_report.sh makes the text).

  sass_loops.py FILE.sass MANGLED_KERNEL_NAME [--min N]
"""
import argparse
import collections
import re
import sys


def kernel_instructions(text, name):
    for block in text.split("Function : ")[1:]:
        if block.split("\n", 1)[0].strip() == name:
            out = []
            for line in block.split("\n"):
                m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
                if m:
                    out.append((int(m.group(1), 16), m.group(2).strip()))
            return out
    sys.exit(f"sass_loops.py: no kernel named {name} in the input")


def opcode(ins):
    ins = re.sub(r"^@!?U?P\w+\s+", "", ins)  # predicate guard
    return ins.split()[0].split(".")[0]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sass")
    p.add_argument("kernel")
    p.add_argument("--min", type=int, default=1, help="only loops with at least this many instructions")
    a = p.parse_args()
    ins = kernel_instructions(open(a.sass).read(), a.kernel)
    print(f"{len(ins)} instructions")
    loops = []
    for addr, text in ins:
        m = re.search(r"\bBRA(?:\.\w+)*\s+(?:`?\(?\.?L_x_\d+\)?`?\s*)?0x([0-9a-f]+)", text)
        if m and int(m.group(1), 16) < addr:
            start = int(m.group(1), 16)
            body = [t for x, t in ins if start <= x <= addr]
            if len(body) >= a.min:
                loops.append((len(body), start, addr, collections.Counter(opcode(t) for t in body)))
    for n, start, end, ops in sorted(loops):
        hist = ", ".join(f"{k} {v}" for k, v in ops.most_common())
        print(f"loop {start:#06x}-{end:#06x}: {n} instructions: {hist}")


if __name__ == "__main__":
    main()
