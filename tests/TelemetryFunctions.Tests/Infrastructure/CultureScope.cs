using System.Globalization;

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>
/// Makes a culture, named as <see cref="CultureInfo(string)"/> takes it, the current culture (and UI culture) of the code that follows, until disposed: what a
/// host started with another <c>LANG</c> would run under. Cultures worth trying: <c>th-TH</c> (Buddhist calendar, 2026 is
/// 2569), <c>sv-SE</c> (U+2212 minus sign, comma decimals), <c>ar-SA</c> (Umm al-Qura calendar).
/// </summary>
public sealed class CultureScope : IDisposable
{
    private readonly CultureInfo _culture = CultureInfo.CurrentCulture;
    private readonly CultureInfo _uiCulture = CultureInfo.CurrentUICulture;

    public CultureScope(string name)
    {
        CultureInfo.CurrentCulture = new CultureInfo(name);
        CultureInfo.CurrentUICulture = new CultureInfo(name);
    }

    public void Dispose()
    {
        CultureInfo.CurrentCulture = _culture;
        CultureInfo.CurrentUICulture = _uiCulture;
    }
}
