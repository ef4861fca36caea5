"""What to run: the run configuration, named experiments, fine-tuning strategies as
framework-neutral plans, and a sweep as a plan of jobs. Nothing here runs anything."""
