using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Metering;

/// <summary>Prepares a streamed OpenAI chat request so that the upstream reports usage at the end of the stream.</summary>
public static class StreamUsageRequest
{
    /// <summary>
    /// Sets <c>stream_options.include_usage = true</c> on a streamed OpenAI chat request. Returns true when the
    /// client had not asked for usage itself, i.e. when the usage-only chunk must be hidden from it
    /// (pass the result as <c>suppressUsageOnlyChunk</c> to <see cref="SseStreamMeter"/>).
    /// </summary>
    /// <remarks>Other dialects report usage in-stream without opting in; they are left untouched and return false.</remarks>
    public static bool ForceIncludeUsage(LlmRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Dialect != LlmDialect.OpenAIChat || !request.Stream)
        {
            return false;
        }

        var options = request.Body["stream_options"] as JsonObject;
        if (options?["include_usage"] is JsonValue v && v.TryGetValue<bool>(out var asked) && asked)
        {
            return false;
        }

        if (options is null)
        {
            options = [];
            request.Body["stream_options"] = options;
        }

        options["include_usage"] = true;
        request.MarkModified();
        return true;
    }
}
