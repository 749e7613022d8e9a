"""Reference weights shipped with sdn-bench, installed as the package ``sdn_bench_checkpoints``
(:mod:`benchmarks.shipped` finds them): the reference SDNs, OccNet and verifier, each with the
manifest (``<name>.json``) that says how it was trained. No code."""
