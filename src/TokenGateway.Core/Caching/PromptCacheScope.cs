using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Caching;

/// <summary>
/// Scopes OpenAI's automatic prompt cache to the caller's team: every OpenAI chat and Responses request is sent with a
/// <c>prompt_cache_key</c> that starts with the team's scope (the client's own key, if any, is kept after it) and a
/// client <c>user</c> is prefixed the same way. All teams share the gateway's one provider organization, so without
/// this a team could learn from <c>cached_tokens</c> that another team recently sent a given prefix.
/// </summary>
/// <remarks>
/// OpenAI routes requests by a hash of the prompt prefix combined with <c>prompt_cache_key</c>, so distinct keys keep
/// teams' prefixes on distinct cache entries, and one stable key per team keeps a conversation's prefix hitting. The
/// scope is a hash of the team id (ids are never sent to the provider). OpenAI caches only prompts of at least
/// <see cref="MinCacheablePromptTokens"/> tokens, so shorter requests are left untouched (and still forwarded
/// byte-identical when no other stage changed them): there is no cache state to read or protect.
/// </remarks>
public static class PromptCacheScope
{
    /// <summary>OpenAI's prompt-caching minimum: shorter prompts are never cached, so they need no scope.</summary>
    public const int MinCacheablePromptTokens = 1024;

    private static readonly ConcurrentDictionary<string, string> _scopes = new(StringComparer.Ordinal);

    /// <summary>The team's scope: <c>tg-</c> + 16 hex digits of SHA-256(team id).</summary>
    public static string For(string teamId)
    {
        ArgumentNullException.ThrowIfNull(teamId);
        if (_scopes.TryGetValue(teamId, out var scope))
        {
            return scope;
        }

        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(teamId), digest);
        scope = "tg-" + Convert.ToHexStringLower(digest[..8]);
        if (_scopes.Count < 100_000)
        {
            _scopes[teamId] = scope;
        }

        return scope;
    }

    /// <summary>
    /// Sets or namespaces <c>prompt_cache_key</c> and namespaces <c>user</c> for an OpenAI chat or Responses request;
    /// returns true when the body changed. Idempotent. Prompts shorter than
    /// <see cref="MinCacheablePromptTokens"/> (<paramref name="promptTokens"/>, the pre-flight count) are left alone.
    /// </summary>
    public static bool Apply(LlmRequest request, string teamId, int promptTokens)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (promptTokens < MinCacheablePromptTokens || request.Dialect is not (LlmDialect.OpenAIChat or LlmDialect.OpenAIResponses))
        {
            return false;
        }

        var scope = For(teamId);
        var body = request.Body;
        var changed = false;
        if (!body.ContainsKey("prompt_cache_key"))
        {
            request.AddStringField("prompt_cache_key", scope); // spliced into an untouched body: no re-serialization
            changed = true;
        }
        else if (Str(body["prompt_cache_key"]) is not { } clientKey || !IsScoped(clientKey, scope))
        {
            // A client key (or a malformed one, which the provider would refuse anyway) is kept after the scope.
            body["prompt_cache_key"] = Str(body["prompt_cache_key"]) is { } k ? scope + ":" + k : scope;
            request.MarkModified();
            changed = true;
        }

        if (Str(body["user"]) is { } user && !IsScoped(user, scope))
        {
            body["user"] = scope + ":" + user;
            request.MarkModified();
            changed = true;
        }

        return changed;
    }

    private static bool IsScoped(string value, string scope) =>
        value.Length >= scope.Length && value.StartsWith(scope, StringComparison.Ordinal)
        && (value.Length == scope.Length || value[scope.Length] == ':');

    private static string? Str(JsonNode? node) =>
        node is JsonValue v && v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : null;
}
