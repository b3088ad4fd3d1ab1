"""The shared results format and its renderers (terminal, HTML, comparisons)."""
