// The Lambda runtime loop, as Node.js's managed runtime runs it: fetch the next
// event from the Runtime API, run the handler, post its result. Init (the import
// below: SDK clients, modules) happens before the first /next, as in AWS.
const { handler } = await import("./index.mjs");
const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime/invocation`;
for (;;) {
  const next = await fetch(`${api}/next`);
  const id = next.headers.get("lambda-runtime-aws-request-id");
  const event = await next.json();
  try {
    const result = await handler(event);
    await fetch(`${api}/${id}/response`, { method: "POST", body: JSON.stringify(result) });
  } catch (e) {
    const body = JSON.stringify({ errorType: e.name, errorMessage: String(e.message) });
    await fetch(`${api}/${id}/error`, { method: "POST", body });
  }
}
