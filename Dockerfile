# cat2 services (cat2bro, cat2pub, cat2sub, cat2cli) in one image; compose.yaml runs them.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang libclang-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --bins \
    && mkdir -p /out && cp target/release/cat2bro target/release/cat2pub target/release/cat2sub \
       target/release/cat2cli target/release/cat2-example /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --create-home cat2 && mkdir -p /state && chown cat2 /state
COPY --from=build /out/ /usr/local/bin/
USER cat2
WORKDIR /home/cat2
