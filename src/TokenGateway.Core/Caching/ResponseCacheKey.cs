using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Caching;

/// <summary>
/// The exact response cache's key: SHA-256 over the team, the route, the served (catalogue) model and the canonical
/// body that is sent upstream, minus the fields that cannot change the answer (<see cref="ExcludedFields"/>).
/// </summary>
/// <remarks>
/// <para>Computed from the request's already-parsed tree (<see cref="LlmRequest.Body"/>) after every rewriting stage:
/// no second parse. Top-level fields are hashed in ordinal name order, so a client that reorders them still hits;
/// nested values are hashed as serialized (their order can matter to a model: tool lists, schema properties).</para>
/// <para>The team id is part of the hashed material and of the readable prefix, so an entry can never be found from
/// another team. Each field is length-prefixed, so no two different inputs share one hashed stream.</para>
/// </remarks>
public static class ResponseCacheKey
{
    /// <summary>Version of the key layout; bumping it orphans (never misreads) older entries.</summary>
    public const string Version = "v1";

    /// <summary>The savings stage a cache hit is recorded under.</summary>
    public const string StageName = "cache";

    /// <summary>
    /// Top-level request fields left out of the key, with the reason: transport (<c>stream</c>, <c>stream_options</c>:
    /// a stored answer is replayed as JSON or SSE), attribution (<c>user</c>, <c>metadata</c>, <c>safety_identifier</c>,
    /// <c>prompt_cache_key</c>, <c>service_tier</c>: who asked or how it is billed, not what is answered) and <c>model</c> (replaced by the catalogue name the gateway routes to).
    /// </summary>
    public static IReadOnlySet<string> ExcludedFields { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "stream", "stream_options", "user", "metadata", "safety_identifier", "prompt_cache_key", "service_tier", "model",
    };

    /// <summary>Computes the key (<c>tg:rc:v1:{team}:{sha256 hex}</c>) for the request as it will be sent upstream.</summary>
    public static string Compute(string teamId, string route, string servedModel, JsonObject body)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        ArgumentNullException.ThrowIfNull(route);
        ArgumentNullException.ThrowIfNull(servedModel);
        ArgumentNullException.ThrowIfNull(body);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new ArrayBufferWriter<byte>(1024);
        AppendField(hash, Version);
        AppendField(hash, teamId);
        AppendField(hash, route);
        AppendField(hash, servedModel);

        var names = new List<string>(body.Count);
        foreach (var (name, _) in body)
        {
            if (!ExcludedFields.Contains(name))
            {
                names.Add(name);
            }
        }

        names.Sort(StringComparer.Ordinal);
        using var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true, Indented = false });
        foreach (var name in names)
        {
            AppendField(hash, name);
            buffer.ResetWrittenCount();
            writer.Reset(buffer);
            var value = body[name];
            if (value is null)
            {
                writer.WriteNullValue();
            }
            else
            {
                value.WriteTo(writer);
            }

            writer.Flush();
            AppendLength(hash, buffer.WrittenCount);
            hash.AppendData(buffer.WrittenSpan);
        }

        Span<byte> digest = stackalloc byte[32];
        hash.GetHashAndReset(digest);
        return string.Concat("tg:rc:", Version, ":", TeamSegment(teamId), ":", Convert.ToHexStringLower(digest));
    }

    /// <summary>The team's segment of a key: its id when it is short and key-safe, else a hash of it.</summary>
    private static string TeamSegment(string teamId)
    {
        if (teamId.Length <= 64 && teamId.AsSpan().IndexOfAnyExcept(SafeChars) < 0)
        {
            return teamId;
        }

        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(teamId), digest);
        return Convert.ToHexStringLower(digest[..8]);
    }

    private static readonly SearchValues<char> SafeChars =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");

    private static void AppendField(IncrementalHash hash, string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        AppendLength(hash, bytes.Length);
        hash.AppendData(bytes);
    }

    private static void AppendLength(IncrementalHash hash, int length)
    {
        Span<byte> prefix = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(prefix, length);
        hash.AppendData(prefix);
    }
}
