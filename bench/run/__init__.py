"""A matrix's life from command to child: command -> profile -> matrix -> session -> executor ->
launcher -> worker, plus the `fit` command, which drives real runs too. Only the worker
imports torch, inside its functions."""
