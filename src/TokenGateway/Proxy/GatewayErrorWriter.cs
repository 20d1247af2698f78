using System.Text.Json;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Errors;

namespace TokenGateway.Proxy;

/// <summary>
/// Writes gateway errors in the caller's dialect so SDKs raise their normal exceptions. Only writes the response: the
/// request's outcome is recorded by the caller (<see cref="LlmExchangeExtensions.FailAsync"/> does both).
/// </summary>
internal static class GatewayErrorWriter
{
    /// <summary>
    /// Writes <paramref name="error"/>'s envelope unless the response has started. <paramref name="status"/> overrides
    /// the catalogue status (an upstream error keeps the provider's status); <paramref name="requestId"/> goes into the
    /// Anthropic envelope's <c>request_id</c>.
    /// </summary>
    public static async Task WriteAsync(HttpContext context, LlmDialect dialect, GatewayError error, string message,
        string? param = null, TimeSpan? retryAfter = null, string? requestId = null, int? status = null)
    {
        if (context.Response.HasStarted)
        {
            return;
        }

        var info = GatewayErrors.Describe(error);
        context.Response.StatusCode = status ?? info.Status;
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
                if (requestId is not null)
                {
                    writer.WriteString("request_id", requestId);
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
