namespace TokenGateway.Simulator;

/// <summary>Provider-looking random identifiers (<c>chatcmpl-…</c>, <c>msg_…</c>, <c>resp_…</c>).</summary>
internal static class Ids
{
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    public static string New(string prefix, int length) =>
        string.Create(prefix.Length + length, prefix, static (span, p) =>
        {
            p.AsSpan().CopyTo(span);
            for (var i = p.Length; i < span.Length; i++)
            {
                span[i] = Alphabet[Random.Shared.Next(Alphabet.Length)];
            }
        });
}
