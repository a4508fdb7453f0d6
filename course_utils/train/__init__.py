"""The course's own training script: ``python -m course_utils.train`` or ``accelerate launch -m course_utils.train``.

"Introduction to Diffusers" ends with it (section "Scaling up"). It trains the notebook's model the
notebook's way (predict the noise, MSE loss, AdamW) and adds what a long run needs: Accelerate (one
GPU, several GPUs or machines, mixed precision), warm-up and a cosine learning rate, gradient
accumulation, EMA weights, sample grids, atomic checkpoints with exact resume, and pushing to the
Hub. ``--help`` lists every option.

Modules: ``__main__`` (``main``: options, signals, exit codes), ``loop`` (set-up, the optimizer
step, the training loop), ``args`` (the command line, checked before anything is built),
``outputs`` (loss log, sample grids, the pipeline, the Hub upload) and ``checkpoints``.

Randomness is keyed, not streamed: the data order of epoch e on process r comes from a generator
seeded with (seed, r, e), and the noise and timesteps of optimizer step s from one seeded with
(seed, r, s). A resumed run therefore draws exactly what the unbroken run would have drawn.

Launching: ``accelerate launch -m course_utils.train ...`` uses ``accelerate config``'s set-up (GPUs,
machines); on several machines ``--output_dir`` must be a shared folder. Several processes on a CPU:
``ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 -m course_utils.train ...``
(Accelerate's ``--cpu`` flag alone starts one process unless MPI is set up). Ctrl-C (or SIGTERM, also
when sent to ``accelerate launch``) stops cleanly at the end of the current step, after saving a
checkpoint of it (a second Ctrl-C stops at once), with exit code 130 (143 for SIGTERM), and says
how to resume.

Work is never mixed or lost: one run per ``--output_dir`` (a lock, and a fresh run never starts
where another run's checkpoints are); a resumed run must use the checkpoint's options; checkpoints
hold safetensors and JSON only, checked against their SHA-256 before they are trusted; a NaN loss
or a full disk stops the run with one line before anything bad is saved.
"""
