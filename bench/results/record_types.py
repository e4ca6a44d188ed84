"""The run record's shape in code: the spec (a record's `config`), the record and its nested
blocks, one comment per field. docs/schema.md documents the same fields in prose;
tests/test_record_types.py keeps the two naming the same fields, and checks that every key of
the committed sample records is declared here. Types only: nothing here validates (that is
bench.results.schema.validate) and nothing imports torch.
"""

from typing import Any, NotRequired, TypedDict


class Spec(TypedDict):
    """One run as the matrix resolves it (bench.run.matrix.build_matrix); the record keeps it as `config`."""
    model: str                          # as the user named it: a built-in, `shape:NAME`, a hub id or a path
    model_path: str                     # the resolved local directory (left out of every hash)
    model_source: NotRequired[dict]     # hub models only: hub_id, revision, path (left out of every hash)
    method: str                         # a row of bench.method_table
    seed: int                           # data order and adapter init
    profile: str | None                 # the profile file the run came from
    steps: int                          # optimizer steps
    warmup_steps: int                   # first steps left out of throughput
    batch_size: int                     # rows per micro-batch (global under nproc > 1)
    grad_accum: int                     # micro-batches per optimizer step
    seq_len: int                        # tokens per row
    lr: float                           # one learning rate for every method
    lr_schedule: str                    # constant | linear | cosine
    optimizer: str                      # adamw_torch | adamw_8bit | paged_adamw | paged_adamw_8bit
    weight_decay: float
    grad_checkpointing: bool            # recompute activations in backward
    device: str                         # auto | cpu | cuda as asked; the record's memory.device says where it ran
    precision: str                      # the precision policy as asked (auto, fp32, bf16-true, ...)
    weights_dtype: NotRequired[str]     # set by the worker from the resolved policy (bench.training.precision)
    compute_dtype: NotRequired[str]     # likewise; a schema-v1 record's only precision setting
    run_timeout_s: int                  # a run still going after this is a timeout (not part of spec_hash)
    max_memory: str                     # the per-run budget as written ("" for none)
    memory_budget: NotRequired[dict]    # the default CPU budget when max_memory is empty (not part of spec_hash)
    trust_remote_code: bool             # load model code from a checkpoint only when asked
    cpu_malloc_mmap_threshold: int      # MALLOC_MMAP_THRESHOLD_ for the child (0: glibc's default)
    nproc: NotRequired[int]             # processes per run, only when > 1
    strategy: NotRequired[str]          # ddp | fsdp, only when nproc > 1
    data_source: str                    # a built-in data name, or a file's absolute path
    data_format: str                    # auto | text | prompt-completion | alpaca | chat
    train_on_prompt: bool               # loss on the prompt tokens too
    packing: bool                       # examples concatenated into seq_len rows
    heldout_examples: int               # examples held out of training for the held-out loss
    max_unsupervised_pct: float         # fail above this share of examples with no supervised token
    keep_duplicates: NotRequired[bool]  # only when on: repeated examples kept
    skip_bad_rows: NotRequired[bool]    # only when on: unreadable rows left out and counted
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    target_modules: str | list          # "all-linear" or module names
    mmlu: bool                          # score MMLU in the eval phase
    mmlu_shots: int
    mmlu_limit: int | None              # questions per subject (None: all)
    target_task: str | None             # the lm-eval task scoring the data source's test split
    target_limit: int | None
    eval_batch_size: int
    tasks: list                         # other lm-eval tasks
    forget_tasks: NotRequired[list]     # only when the forgetting suite is on
    forget_limit: NotRequired[int | None]
    breakdown: NotRequired[bool]        # False: no profiled breakdown step (fit's probes)
    out_dir: NotRequired[str]           # where the run writes (not part of spec_hash)
    resume: NotRequired[bool]           # (not part of spec_hash)


class Params(TypedDict):
    trainable: int | None               # parameters with requires_grad (base: 0)
    total: int | None                   # all parameters, 4-bit packed ones counted as the weights they stand for
    trainable_pct: float | None         # 100 x trainable / total


class PhaseMemory(TypedDict):
    """One phase's figures (load, train, eval; bench.measure.memory)."""
    peak_bytes: int                     # the phase's peak: CPU peak RSS, CUDA max reserved
    wall_s: float                       # how long the phase took
    start_bytes: int                    # RSS (CPU) or reserved (CUDA) at the phase start
    end_bytes: NotRequired[int]         # CPU: RSS at the phase end
    peak_reset: NotRequired[bool]       # CPU: whether the kernel's high-water mark was reset at the start
    allocated_peak_bytes: NotRequired[int]   # CUDA: torch's memory stats for the phase
    reserved_peak_bytes: NotRequired[int]
    active_peak_bytes: NotRequired[int]
    reserved_end_bytes: NotRequired[int]     # CUDA: reserved at the phase end, when NVML is read
    nvml_used_bytes: NotRequired[int | None]   # CUDA: the GPU's used memory per NVML (every process)
    nvml_total_bytes: NotRequired[int | None]  # CUDA: the GPU's total memory per NVML
    nvml_errors: NotRequired[dict]             # CUDA: call name -> error, when an NVML call failed
    nvml_process_bytes: NotRequired[int | None]  # CUDA: what NVML charges this process
    device_peak_bytes: NotRequired[int]        # train, CUDA with --max-memory: reserved peak + outside torch
    outside_torch_bytes: NotRequired[int]      # what the process held outside torch's pool
    outside_from: NotRequired[str]             # where that figure came from


class Memory(TypedDict):
    """The memory block: the run's baseline and peaks, and one PhaseMemory per phase."""
    device: str                                  # cpu | cuda
    baseline_bytes: int | None                   # the interpreter with the libraries imported, before loading
    baseline_peak_bytes: NotRequired[int]        # the RSS high-water mark when the baseline was read
    process_peak_bytes: int | None               # the whole child's peak RSS
    wait4_peak_bytes: NotRequired[int | None]    # ru_maxrss from wait4 in the parent (last phase only)
    worker_peak_bytes: NotRequired[int]          # the worker's own whole-process RSS peak
    budget_bytes: NotRequired[int]               # the CPU data-segment limit the run ran under
    budget_source: NotRequired[str]              # where that limit came from
    cuda_context_bytes: NotRequired[int | None]  # CUDA: NVML minus torch's reserved, before the first phase
    nvml: NotRequired[dict]                      # CUDA: which physical GPU the NVML figures come from
    breakdown: NotRequired[dict]                 # memory at the peak of one profiled step (docs/breakdown.md)
    load: PhaseMemory | None
    train: PhaseMemory | None
    eval: PhaseMemory | None


class Throughput(TypedDict):
    tokens_per_s: float                 # real tokens trained per second over the measured steps
    tokens: int                         # real tokens in the measured steps
    steps_measured: int                 # optimizer steps the figures cover (warm-up excluded)
    warmup_steps: int                   # steps left out of the figures
    step_time_s: dict                   # p50, p90, mean of the measured step times
    step_times_s: list                  # every step's time, warm-up included
    tokens_per_step: list               # real tokens per step, warm-up included
    model_flops_per_token: NotRequired[int]    # training FLOPs per token (docs/mfu.md)
    mfu: NotRequired[float | None]              # model FLOPs utilisation against the measured matmul rate
    mfu_datasheet: NotRequired[float | None]    # the same against the vendor's dense peak
    mfu_flag: NotRequired[str | None]           # why an MFU above 1 cannot be right
    flops_counted: NotRequired[dict]            # what the FLOP count used


class Data(TypedDict, total=False):
    """The training data as prepared (bench.data.prepared; docs/data.md)."""
    source: str                         # the data source as resolved
    format: str                         # the format it was read as
    fingerprint: str                    # hash of the prepared examples
    seq_len: int                        # the length examples were cut to
    packing: bool                       # packed into rows of seq_len
    train_on_prompt: bool
    train_examples: int
    heldout_examples: int
    truncated_examples: int             # examples cut at seq_len
    prompt_cut_examples: int            # of those, cut inside the prompt
    answer_cut_examples: int            # of those, cut inside the answer
    unsupervised_examples: int          # examples left with no supervised token
    duplicates_removed: int
    test_overlap_removed: int           # examples also in the target task's test split
    split_tokenisation_differs: int     # examples whose prompt tokenises differently alone
    skipped_rows: dict                  # with skip_bad_rows only: count and reasons


class Env(TypedDict, total=False):
    python: str
    platform: str
    packages: dict                      # name -> version
    torch_cuda: str | None
    cuda_available: bool
    device_name: str | None
    cpu_model: str
    cpu_count: int
    threads: int
    git_sha: str | None
    git_dirty: bool | None
    hostname: str
    ram_bytes: int                      # the machine's RAM
    gpu_memory_bytes: int               # CUDA: the GPU's total memory
    malloc_env: dict                    # MALLOC_* variables in force
    calibration: dict                   # the matmul calibration (bench.measure.matmul)


class Record(TypedDict):
    """One line of results.jsonl (bench.results.record.skeleton fills every required key)."""
    schema_version: int                 # bench.results.schema.SCHEMA_VERSION
    run_id: str                         # <UTC time>-<model slug>-<method>-s<seed>-<hash8>
    spec_hash: str                      # the work: config minus the non-work and location fields
    compare_key: str                    # spec_hash minus method: runs that differ only in method
    group_key: str | None               # compare_key minus seed and process layout: a run's seeds together
    model: str                          # as the user named it
    model_path: str | None              # the resolved local directory
    method: str                         # a row of bench.method_table
    seed: int | None                    # config.seed
    status: str                         # bench.results.schema.STATUSES
    error: str | None                   # why a run is not ok, one line
    started_at: str                     # ISO 8601 UTC
    finished_at: str | None
    wall_s: float | None                # the child's wall time
    host: str | None                    # where the child ran
    executor: NotRequired[str]          # local | ray | slurm | submitit-local
    resources: NotRequired[dict]        # what a scheduler was asked for
    distributed: NotRequired[dict]      # nproc > 1 only: world size, strategy, ranks
    params: Params
    memory: Memory
    precision: dict | None              # the resolved precision policy (bench.training.precision.describe)
    data: Data | None
    heldout: dict | None                # held-out loss: loss, n, tokens, losses, ids
    throughput: Throughput | None
    loss: list                          # training loss per optimizer step
    mmlu: dict | None                   # MMLU scores (docs/mmlu.md)
    tasks: dict                         # other lm-eval tasks: {task: {metric: value}}
    estimate: dict | None               # the planner's prediction beside what was measured
    weights: str                        # checkpoint | random (a shape model)
    shape: dict | None                  # how a shape model was built
    eval_skipped: str | None            # why the eval phase scored nothing
    contention: dict | None             # how busy the machine was over the train phase
    config: Spec
    env: Env


BLOCKS: dict[str, Any] = {"params": Params, "memory": Memory, "memory.<phase>": PhaseMemory,
                          "throughput": Throughput, "data": Data, "env": Env}
