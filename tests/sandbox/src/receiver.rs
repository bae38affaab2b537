//! `cyberbiz-sandbox receive`: a webhook receiver that hands each delivery to PostgreSQL's
//! `cyberbiz_ingest_webhook` (Postgres cannot receive HTTP itself). It passes the raw body as
//! text, never through json/jsonb (which would reorder keys and break the HMAC), with the
//! X-Cyberbiz-Event, X-Cyberbiz-Hmac-Sha256 and X-Cyberbiz-Domain headers. It answers 200 with
//! the event id, 401 when the signature is refused, 400 for other refusals, 413 for bodies over
//! 2 MB. Any web server can do the same in a few lines; this one is the tested example.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

const MAX_BODY: usize = 2 * 1024 * 1024;

fn reply(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn handle(db: Arc<Mutex<postgres::Client>>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    if req.method() != Method::POST {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, "POST webhooks here\n".into()));
    }
    let event = header(&req, "x-cyberbiz-event");
    let signature = header(&req, "x-cyberbiz-hmac-sha256");
    let domain = header(&req, "x-cyberbiz-domain");
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::PAYLOAD_TOO_LARGE, "body over 2 MB\n".into())),
    };
    let Ok(text) = String::from_utf8(body.to_vec()) else {
        return Ok(reply(StatusCode::BAD_REQUEST, "body is not UTF-8 text\n".into()));
    };
    let result = tokio::task::spawn_blocking(move || {
        let mut c = db.lock().unwrap_or_else(|e| e.into_inner());
        c.query_one("SELECT cyberbiz_ingest_webhook($1, $2, $3, $4)", &[&text, &event, &signature, &domain]).map(|row| row.get::<_, i64>(0))
    })
    .await;
    Ok(match result {
        Ok(Ok(id)) => reply(StatusCode::OK, format!("{id}\n")),
        Ok(Err(e)) => {
            let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
            let msg = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
            let status = if code.starts_with("28") { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
            reply(status, format!("{code}: {msg}\n"))
        }
        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    })
}

/// Serves until the process ends; the first stdout line is the receiver's URL.
pub fn run(listen: &str, conninfo: &str) -> Result<(), String> {
    let client = postgres::Client::connect(conninfo, postgres::NoTls).map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
    let db = Arc::new(Mutex::new(client));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = TcpListener::bind(listen).await.map_err(|e| format!("cannot listen: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("http://{addr}/webhooks");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let db = db.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(db.clone(), req));
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    })
}
