"""A fleet of several real nodes on one machine: the demo, the lab tests and the benchmarks.

Each node is a real ``transmission-daemon`` and a real ``tva`` controller (in-process), with its
own address in a private network namespace (``netns.py``), all following one bare git repo.
"""
