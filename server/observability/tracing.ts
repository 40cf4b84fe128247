// OpenTelemetry traces over OTLP/HTTP (JSON), configured by the standard OTEL_* variables.
// Loaded by start.ts only when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// is set. Attributes follow OpenTelemetry semantic conventions 1.45 (HTTP, database, and the
// MCP / GenAI conventions, which are at "development" status there).
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import type { SpanHandle, Tracing } from "./hooks.js";

const KINDS = { client: SpanKind.CLIENT, internal: SpanKind.INTERNAL } as const;

function handle(span: Span): SpanHandle & { failed(): boolean } {
  let ended = false;
  let failed = false;
  return {
    failed: () => failed,
    setAttributes: (attributes) => void span.setAttributes(attributes),
    fail(errorType) {
      failed = true;
      span.setAttribute("error.type", errorType);
      span.setStatus({ code: SpanStatusCode.ERROR });
    },
    rename: (name) => void span.updateName(name),
    end() {
      if (ended) return;
      ended = true;
      span.end();
    },
    traceparent() {
      const c = span.spanContext();
      return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 1).toString(16).padStart(2, "0")}`;
    },
  };
}

export function startTracing() {
  const resource = defaultResource()
    .merge(resourceFromAttributes({ "service.name": "mcp-servers-api" }))
    .merge(detectResources({ detectors: [envDetector] })); // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  provider.register(); // AsyncLocalStorage context and W3C trace context, as OTEL_PROPAGATORS says
  const tracer = trace.getTracer("mcp-servers-api");

  const tracing: Tracing = {
    http(headers, name, run) {
      const parent = propagation.extract(ROOT_CONTEXT, headers);
      const span = tracer.startSpan(name, { kind: SpanKind.SERVER }, parent);
      context.with(trace.setSpan(parent, span), () => run(handle(span), span.spanContext().traceId));
    },
    inSpan(name, kind, attributes, fn) {
      return tracer.startActiveSpan(name, { kind: KINDS[kind], attributes }, async (span) => {
        const h = handle(span);
        try {
          return await fn(h);
        } catch (err) {
          if (!h.failed()) h.fail((err as Error)?.name ?? "error");
          throw err;
        } finally {
          h.end();
        }
      });
    },
    start(name, kind, attributes) {
      return handle(tracer.startSpan(name, { kind: KINDS[kind], attributes }));
    },
    annotate(attributes) {
      trace.getActiveSpan()?.setAttributes(attributes);
    },
  };
  return { tracing, shutdown: () => provider.shutdown() };
}
