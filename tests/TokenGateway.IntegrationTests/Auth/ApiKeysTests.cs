using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using TokenGateway.Auth;

namespace TokenGateway.IntegrationTests.Auth;

/// <summary>The span-based digest and header read of the hot path agree with the stored format and the string API.</summary>
public sealed class ApiKeysTests
{
    [Theory]
    [InlineData("tg-abc")]
    [InlineData("tg-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg")]
    [InlineData("tg-ünïcödé-key")]
    public void Digest_ToHex_IsTheLowerHexSha256OfTheUtf8Key(string key)
    {
        var expected = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

        Assert.Equal(expected, ApiKeys.Digest(key).ToHex());
        Assert.Equal(expected, ApiKeys.Hash(key));
        Assert.Equal(ApiKeys.Digest(key), ApiKeys.Digest(key.ToCharArray()));
        Assert.NotEqual(ApiKeys.Digest(key), ApiKeys.Digest(key + "x"));
    }

    [Theory]
    [InlineData("Authorization", "Bearer  tg-key1 ", "tg-key1")]
    [InlineData("Authorization", "bearer tg-key2", "tg-key2")]
    [InlineData("x-api-key", " tg-key3", "tg-key3")]
    [InlineData("api-key", "tg-key4", "tg-key4")]
    [InlineData("Authorization", "Basic abc", "")]
    public void TryReadSpan_ReadsWhatTryReadReads(string header, string value, string expected)
    {
        var context = new DefaultHttpContext();
        context.Request.Headers[header] = value;

        var found = ApiKeys.TryReadSpan(context.Request, out var span);
        var foundString = ApiKeys.TryRead(context.Request, out var text);

        Assert.Equal(expected.Length > 0, found);
        Assert.Equal(found, foundString);
        Assert.Equal(expected, span.ToString());
        Assert.Equal(expected, text);
    }
}
