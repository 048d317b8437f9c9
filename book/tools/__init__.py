"""Build tooling of the book "Dropout in LLMs" (three editions: en, ru, zh).

Run from the repository root with the project's virtualenv:

    python -m book.tools.execute   # run every chapter with papermill, write outputs back
    python -m book.tools.build     # build book/_build/html/{en,ru,zh} + a root index.html
    python -m book.tools.build --student   # student notebooks and student edition
    python -m book.tools.colab --check | --fix   # Colab install URL and GPU metadata

The Makefile targets ``book``, ``html`` and ``student`` call these.
"""
