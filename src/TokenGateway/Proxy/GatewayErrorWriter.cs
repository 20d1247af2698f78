using System.Text.Json;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;

namespace TokenGateway.Proxy;

/// <summary>Writes gateway errors in the caller's dialect so SDKs raise their normal exceptions.</summary>
internal static class GatewayErrorWriter
{
    public static async Task WriteAsync(HttpContext context, LlmDialect dialect, GatewayError error, string message,
        string? param = null, TimeSpan? retryAfter = null)
    {
        var info = GatewayErrors.Describe(error);
        var exchange = context.Features.Get<LlmExchange>();
        if (exchange is not null)
        {
            exchange.ErrorCode = info.Code;
            exchange.Status ??= error is GatewayError.UpstreamUnavailable or GatewayError.UpstreamTimeout or GatewayError.ProviderAuthFailed
                ? Core.Metering.UsageStatus.UpstreamError
                : Core.Metering.UsageStatus.Rejected;
        }

        if (context.Response.HasStarted)
        {
            return;
        }

        context.Response.StatusCode = info.Status;
        if (retryAfter is { } ra)
        {
            context.Response.Headers.RetryAfter = Math.Max(1, (long)Math.Ceiling(ra.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        context.Response.ContentType = "application/json";
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            if (dialect.IsAnthropic())
            {
                writer.WriteString("type", "error");
                writer.WriteStartObject("error");
                writer.WriteString("type", info.AnthropicType);
                writer.WriteString("message", message);
                writer.WriteString("code", info.Code);
                writer.WriteEndObject();
                if (exchange is not null)
                {
                    writer.WriteString("request_id", exchange.RequestId);
                }
            }
            else
            {
                writer.WriteStartObject("error");
                writer.WriteString("message", message);
                writer.WriteString("type", info.OpenAIType);
                if (param is null)
                {
                    writer.WriteNull("param");
                }
                else
                {
                    writer.WriteString("param", param);
                }

                writer.WriteString("code", info.Code);
                writer.WriteEndObject();
            }

            writer.WriteEndObject();
        }

        context.Response.ContentLength = buffer.WrittenCount;
        await context.Response.Body.WriteAsync(buffer.WrittenMemory, context.RequestAborted);
    }
}
