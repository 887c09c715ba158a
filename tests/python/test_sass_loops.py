"""tools/sass_loops.py over a hand-written `cuobjdump -sass` excerpt: the kernel is found by its
exact name, a backward branch makes a loop from its target to itself, forward branches do not,
and predicate guards do not count as opcodes."""
import pathlib
import subprocess
import sys

TOOL = pathlib.Path(__file__).resolve().parents[2] / "tools" / "sass_loops.py"

SASS = """
\t\tFunction : _Z5otherv
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   BRA 0x0 ;
\t\tFunction : _Z6kernelPf
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   S2R R0, SR_TID.X ;
        /*0020*/               @P0 BRA 0x80 ;
        /*0030*/                   LDG.E.EF.128 R4, desc[UR4][R2.64] ;
        /*0040*/                   IMMA.16832.S8.S8 R8, R4.ROW, R12.COL, RZ ;
        /*0050*/              @!P1 FMUL R8, R8, 0.5 ;
        /*0060*/                   FMUL R9, R9, R9 ;
        /*0070*/               @P2 BRA 0x30 ;
        /*0080*/                   EXIT ;
"""


def run(tmp_path, *args):
    f = tmp_path / "k.sass"
    f.write_text(SASS)
    return subprocess.run([sys.executable, str(TOOL), str(f), *args], capture_output=True,
                          text=True, timeout=60)


def test_counts_the_loop_of_the_named_kernel(tmp_path):
    r = run(tmp_path, "_Z6kernelPf")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "9 instructions"
    assert lines[1:] == ["loop 0x0030-0x0070: 5 instructions: FMUL 2, LDG 1, IMMA 1, BRA 1"]


def test_min_filters_small_loops(tmp_path):
    r = run(tmp_path, "_Z6kernelPf", "--min", "6")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["9 instructions"]


def test_unknown_kernel_is_an_error(tmp_path):
    r = run(tmp_path, "_Z7missingv")
    assert r.returncode != 0
    assert "no kernel named _Z7missingv" in r.stderr
