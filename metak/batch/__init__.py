"""Many meta-analyses in one run: ``python -m metak batch`` (README, "Batches of reviews").

=====================  ==========================================================================
module                 job
=====================  ==========================================================================
``table``              read the long input table (CSV or Parquet) as text cells with line numbers
``effect_sizes``       effect-size tables (``yi`` with ``vi`` or ``se``): checked once, per review
``records_input``      tables in the study-record schema (arm/contrast columns): the records layer
``reviews``            the checked rows of every review (:class:`Reviews`)
``review_data``        one review's rows -> :class:`~metak.fitting.data.AnalysisData` per analysis
``seeds``              the seed of each review, from the batch seed and its ``review_id``
``work``               fit a chunk of reviews (runs on a Dask worker)
``checkpoint``         the output folder: checkpoints per chunk, resume, the ``--out`` rule
``outputs``            ``summary.parquet``, ``status.csv``, ``manifest.json``, posterior files
``progress``           the progress bar over reviews
``run``                :func:`run_batch`: the whole batch
=====================  ==========================================================================
"""
