using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace TokenGateway.Hosting;

/// <summary>
/// Request body limits. Kestrel refuses bodies over <see cref="DefaultMaxBytes"/> everywhere (413); the routes that
/// take LLM request bodies raise their own request's limit to <c>Gateway:MaxRequestBodyBytes</c> before reading.
/// </summary>
internal static class RequestBodyLimits
{
    /// <summary>The server-wide default cap (admin API, dashboard, anything not raised per route).</summary>
    public const long DefaultMaxBytes = 1024 * 1024;

    /// <summary>The dashboard login form (one key field).</summary>
    public const long LoginFormMaxBytes = 8 * 1024;

    /// <summary>
    /// Sets this request's Kestrel limit to one byte over <paramref name="cap"/>, so a body of cap + 1 bytes reaches the
    /// caller's own check (which answers 413 in its own error shape) instead of failing inside Kestrel. No-op once
    /// the body has started to be read.
    /// </summary>
    public static void SetLimit(HttpContext context, long cap)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = cap + 1;
        }
    }

    /// <summary>Reads the whole body into one array, or returns null as soon as it exceeds <paramref name="cap"/> bytes.</summary>
    public static async Task<byte[]?> ReadCappedAsync(PipeReader reader, long cap, CancellationToken cancellationToken)
    {
        try
        {
            return await ReadAsync(reader, cap, cancellationToken);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return null; // Kestrel's limit (cap + 1) crossed inside a chunk
        }
    }

    private static async Task<byte[]?> ReadAsync(PipeReader reader, long cap, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            if (buffer.Length > cap)
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
                return null;
            }

            if (result.IsCompleted)
            {
                var body = System.Buffers.BuffersExtensions.ToArray(buffer);
                reader.AdvanceTo(buffer.End);
                return body;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }
}
