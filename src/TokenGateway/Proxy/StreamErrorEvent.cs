using System.Buffers;
using System.Text.Json;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Proxy;

/// <summary>
/// The error event a dialect's stream ends with when it fails after its first byte (issue #13): written before the
/// connection is aborted, so an SDK raises its stream error rather than returning a truncated answer as complete.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>OpenAI chat completions: <c>data: {"error":{"message","type","param","code"}}</c> (what OpenAI sends mid-stream).</item>
/// <item>OpenAI Responses: <c>event: error</c> with <c>{"type":"error","code","message","param","sequence_number"}</c>.</item>
/// <item>Anthropic messages: <c>event: error</c> with <c>{"type":"error","error":{"type","message"}}</c>.</item>
/// </list>
/// The connection is aborted afterwards in every case (no chunked terminator, no <c>[DONE]</c>, no <c>message_stop</c>).
/// </remarks>
internal static class StreamErrorEvent
{
    /// <summary>Ledger and event code of a stream that failed after its first byte.</summary>
    public const string Code = "upstream_stream_interrupted";

    /// <summary>Ledger and event code of a stream whose provider went silent for longer than the idle timeout.</summary>
    public const string IdleTimeoutCode = "upstream_idle_timeout";

    /// <summary>Writes the dialect's stream error event; <paramref name="sequenceNumber"/> is the Responses event number.</summary>
    public static void Write(IBufferWriter<byte> output, LlmDialect dialect, string code, string message, int sequenceNumber)
    {
        if (dialect == LlmDialect.OpenAIResponses || dialect.IsAnthropic())
        {
            output.Write("event: error\n"u8);
        }

        output.Write("data: "u8);
        using (var json = new Utf8JsonWriter(output))
        {
            json.WriteStartObject();
            switch (dialect)
            {
                case LlmDialect.AnthropicMessages or LlmDialect.AnthropicCountTokens:
                    json.WriteString("type"u8, "error"u8);
                    json.WriteStartObject("error"u8);
                    json.WriteString("type"u8, "api_error"u8);
                    json.WriteString("message"u8, message);
                    json.WriteString("code"u8, code);
                    json.WriteEndObject();
                    break;
                case LlmDialect.OpenAIResponses:
                    json.WriteString("type"u8, "error"u8);
                    json.WriteString("code"u8, code);
                    json.WriteString("message"u8, message);
                    json.WriteNull("param"u8);
                    json.WriteNumber("sequence_number"u8, sequenceNumber);
                    break;
                default:
                    json.WriteStartObject("error"u8);
                    json.WriteString("message"u8, message);
                    json.WriteString("type"u8, "server_error"u8);
                    json.WriteNull("param"u8);
                    json.WriteString("code"u8, code);
                    json.WriteEndObject();
                    break;
            }

            json.WriteEndObject();
        }

        output.Write("\n\n"u8);
    }
}
