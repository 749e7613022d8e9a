"""sdn-bench's benchmarks. A newcomer's map:

- the harnesses: :mod:`.shapenet` (Table 1(a), 1(b), Table 2; its real side and cache in
  :mod:`.shapenet_real`) and :mod:`.faces` (Figure 8);
- the models they score: :mod:`.models` (``--model SPEC``: the registry, the contract every
  model meets, the reference models, the offline folder protocol), and :mod:`.tasks`
  (``sdn-bench tasks``); the calibration ladder: :mod:`.ladder`; the instrument's own
  validity: :mod:`.validity`;
- reports: :mod:`.manifest`, :mod:`.disclosure`, :mod:`.figures`, :mod:`.report_index`,
  :mod:`.compare`; the CI regression job: :mod:`.regression`; ``make bench``: :mod:`.main_job`;
- sharding over torchrun ranks: :mod:`.sharding`; the command line: :mod:`.cli`;
- measurement scripts, apart from the harness: :mod:`.perf`.
"""
