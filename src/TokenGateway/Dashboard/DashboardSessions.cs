using Microsoft.AspNetCore.DataProtection;
using TokenGateway.Auth;

namespace TokenGateway.Dashboard;

/// <summary>
/// Dashboard sessions: after a login with the admin key the browser holds a Data Protection token (authenticated
/// encryption, time-limited) in a Secure, HttpOnly, SameSite=Strict cookie — never the key itself. A token is valid
/// only while the admin key it was issued under is unchanged.
/// </summary>
internal sealed class DashboardSessions(IDataProtectionProvider dataProtection, AdminKeyService admin, TimeProvider time)
{
    public const string CookieName = "__Host-tg_dashboard";
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);

    private const string Purpose = "TokenGateway.Dashboard.Session.v1";
    private readonly ITimeLimitedDataProtector _protector = dataProtection.CreateProtector(Purpose).ToTimeLimitedDataProtector();

    /// <summary>Issues a session token; null when no admin key is configured yet.</summary>
    public string? Issue() =>
        admin.SessionFingerprint is { } fingerprint ? _protector.Protect(fingerprint, time.GetUtcNow() + Lifetime) : null;

    /// <summary>True when the request carries a valid, unexpired session cookie for the current admin key.</summary>
    public bool IsValid(HttpRequest request)
    {
        if (!request.Cookies.TryGetValue(CookieName, out var token) || string.IsNullOrEmpty(token) || token.Length > 4096
            || admin.SessionFingerprint is not { } current)
        {
            return false;
        }

        try
        {
            var fingerprint = _protector.Unprotect(token, out var expires);
            return expires > time.GetUtcNow() && string.Equals(fingerprint, current, StringComparison.Ordinal);
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return false; // tampered, expired, or issued under keys this node no longer has
        }
    }

    public static CookieOptions CookieOptions(DateTimeOffset? expires) => new()
    {
        HttpOnly = true,
        Secure = true,
        SameSite = SameSiteMode.Strict,
        Path = "/",
        Expires = expires,
        IsEssential = true,
    };
}
