# The storywire worker with both models baked in: nothing is fetched at run time.
FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 STORYWIRE_CACHE_DIR=/opt/storywire-cache
WORKDIR /app
# CPU torch first, or sentence-transformers pulls a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY models models
COPY stream stream
COPY data data
# The static model is distilled and the cluster step's kernels compiled (numba's cache) at build time.
RUN pip install . && python -c "from models.embedders import load_embedder; load_embedder('static')" \
    && python -c "from models.kernels import warm_up; warm_up()"
EXPOSE 6066
CMD ["storywire", "worker"]
