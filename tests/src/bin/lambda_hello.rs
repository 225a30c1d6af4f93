//! The smallest `lambda_http` function: what `scripts/bench-lambda` compares each
//! function's init time and RSS with, built in the same run and profile.

use lambda_http::{service_fn, Body, Error, Request, Response};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Ok::<_, Error>(Response::new(Body::from("hello")))
    }))
    .await
}
