"""Checks before any run starts: each distinct data setting tokenised once, in a child, so bad
data is one line and exit 2 rather than a failed record per run."""


DATA_KEYS = ("data_source", "data_format", "seq_len", "train_on_prompt", "packing", "heldout_examples",
             "max_unsupervised_pct", "keep_duplicates", "skip_bad_rows")


def check_data(specs: list) -> None:
    """Tokenise each distinct (model, data setting) once, in a child (bench.data.check), before any
    run starts: bad data is one line and exit 2, not a failed record per run."""
    from bench.data import check

    seen = set()
    for spec in specs:
        key = (spec["model_path"], *(spec.get(k) for k in DATA_KEYS))
        if key in seen:
            continue
        seen.add(key)
        print(f"checking data {spec['data_source']} with {spec['model']}'s tokenizer ...", flush=True)
        found = check(source=spec["data_source"], data_format=spec["data_format"], tokenizer_path=spec["model_path"],
                      seq_len=spec["seq_len"], train_on_prompt=spec["train_on_prompt"], packing=spec["packing"],
                      heldout=spec["heldout_examples"], max_unsupervised_pct=spec["max_unsupervised_pct"],
                      keep_duplicates=spec.get("keep_duplicates", False),
                      trust_remote_code=spec.get("trust_remote_code", False),
                      skip_bad_rows=spec.get("skip_bad_rows", False))["data"]
        duplicates = found.get("duplicates_removed")
        print(f"    {found['format']}: {found['train_examples']:,} training and {found['heldout_examples']:,} held-out "
              f"examples after removing {'no' if duplicates is None else f'{duplicates:,}'} duplicate(s)"
              f"{' (kept: keep_duplicates)' if duplicates is None else ''} and "
              f"{found.get('test_overlap_removed') or 0:,} "
              f"equal to a test question; {found['truncated_examples']:,} truncated "
              f"({found.get('prompt_cut_examples', 0):,} with the prompt cut from the left), "
              f"{found['unsupervised_examples']:,} left without a supervised token at seq_len {spec['seq_len']}",
              flush=True)
        skipped = found.get("skipped_rows")
        if skipped and skipped["count"]:
            print(f"    skipped {skipped['count']:,} bad row(s) (--skip-bad-rows): {skipped['reasons']}", flush=True)
        if found.get("split_tokenisation_differs"):
            print(f"    warning: {found['split_tokenisation_differs']:,} example(s) tokenise differently "
                  "as prompt then "
                  "completion (what trains) than as one text (what lm-eval scores); the trained answer tokens are "
                  "not the scored ones for those", flush=True)
