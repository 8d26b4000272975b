"""Workbooks written byte for byte the way other spreadsheet programs write them.

openpyxl (what the other tests use) writes tidy files. Excel, LibreOffice,
Google Sheets, Gnumeric and WPS Office each leave their own marks, and those
are what the reader must survive; each mark below says whose it is:

- ``strict``: Excel's "Strict Open XML Spreadsheet" save (ISO 29500 Strict namespaces);
- ``dimension``: the sheet's declared size: Gnumeric writes ``A1:XFD1048576``,
  WPS Office ``A1``, and a file edited by a script keeps a stale ``A1:H3``;
- ``date1904``: Excel for Mac's old default date system;
- error cells (``t="e"``), formulas saved without a value (files written by
  libraries that do not calculate), 17-significant-digit floats (Excel writes
  ``274.65999999999997`` for 274.66), ``_x000D_`` escapes, hidden first sheets,
  an active tab, chart sheets.

A cell is given as a value (str -> inline string, int/float -> number), or a
tuple: ("date", serial, numFmtId), ("error", "#N/A"), ("formula", "1>2"),
("raw", "<c ...>...</c>").
"""

from __future__ import annotations

import zipfile
from pathlib import Path

TRANSITIONAL = {
    "main": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "rel": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
}
STRICT = {
    "main": "http://purl.oclc.org/ooxml/spreadsheetml/main",
    "r": "http://purl.oclc.org/ooxml/officeDocument/relationships",
    "rel": "http://purl.oclc.org/ooxml/officeDocument/relationships",
}


def _column(number: int) -> str:
    letters = ""
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cell(reference: str, value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, tuple):
        kind = value[0]
        if kind == "date":
            return f'<c r="{reference}" s="{ {14: 1, 22: 2}[value[2]] }"><v>{value[1]}</v></c>'
        if kind == "error":
            return f'<c r="{reference}" t="e"><v>{value[1]}</v></c>'
        if kind == "formula":
            return f'<c r="{reference}"><f>{_escape(value[1])}</f></c>'
        if kind == "raw":
            return value[1].replace("REF", reference)
        raise ValueError(kind)
    if isinstance(value, (int, float)):
        return f'<c r="{reference}"><v>{value}</v></c>'
    return f'<c r="{reference}" t="inlineStr"><is><t xml:space="preserve">{_escape(value)}</t></is></c>'


def sheet_xml(rows: list[list], ns: dict, dimension: str | None) -> str:
    body = []
    for r, row in enumerate(rows, start=1):
        cells = "".join(_cell(f"{_column(c)}{r}", v) for c, v in enumerate(row, start=1))
        if cells:
            body.append(f'<row r="{r}">{cells}</row>')
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{ns["main"]}" '
        f'xmlns:r="{ns["r"]}">{dim}<sheetData>{"".join(body)}</sheetData></worksheet>'
    )


def write_workbook(
    path: Path,
    sheets: dict[str, list[list]],
    *,
    strict: bool = False,
    dimensions: dict[str, str] | None = None,
    hidden: tuple[str, ...] = (),
    active: int = 0,
    date1904: bool = False,
    charts: tuple[str, ...] = (),
) -> Path:
    ns = STRICT if strict else TRANSITIONAL
    names = list(sheets) + list(charts)
    workbook_sheets, rels, types = [], [], []
    for i, name in enumerate(names, start=1):
        state = ' state="hidden"' if name in hidden else ""
        workbook_sheets.append(f'<sheet name="{_escape(name)}" sheetId="{i}"{state} r:id="rId{i}"/>')
        if name in charts:
            rels.append(f'<Relationship Id="rId{i}" Type="{ns["rel"]}/chartsheet" Target="chartsheets/sheet{i}.xml"/>')
            types.append(
                f'<Override PartName="/xl/chartsheets/sheet{i}.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.spreadsheetml.chartsheet+xml"/>'
            )
        else:
            rels.append(f'<Relationship Id="rId{i}" Type="{ns["rel"]}/worksheet" Target="worksheets/sheet{i}.xml"/>')
            types.append(
                f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/'
                'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            )
    styles_rel = len(names) + 1
    rels.append(f'<Relationship Id="rId{styles_rel}" Type="{ns["rel"]}/styles" Target="styles.xml"/>')
    pr = '<workbookPr date1904="1"/>' if date1904 else "<workbookPr/>"
    workbook = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="{ns["main"]}" '
        f'xmlns:r="{ns["r"]}">{pr}<bookViews><workbookView activeTab="{active}"/></bookViews>'
        f"<sheets>{''.join(workbook_sheets)}</sheets></workbook>"
    )
    styles = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<styleSheet xmlns="{ns["main"]}">'
        '<fonts count="1"><font/></fonts><fills count="1"><fill/></fills><borders count="1"><border/></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0"/></cellStyleXfs><cellXfs count="3"><xf numFmtId="0"/>'
        '<xf numFmtId="14" applyNumberFormat="1"/><xf numFmtId="22" applyNumberFormat="1"/></cellXfs>'
        "</styleSheet>"
    )
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.'
        'openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="'
        'application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
        'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="'
        'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        f"{''.join(types)}</Types>"
    )
    root_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.'
        f'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="{ns["rel"]}/'
        'officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    workbook_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://'
        f'schemas.openxmlformats.org/package/2006/relationships">{"".join(rels)}</Relationships>'
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", root_rels)
        archive.writestr("xl/workbook.xml", workbook)
        archive.writestr("xl/_rels/workbook.xml.rels", workbook_rels)
        archive.writestr("xl/styles.xml", styles)
        for i, name in enumerate(names, start=1):
            if name in charts:
                archive.writestr(
                    f"xl/chartsheets/sheet{i}.xml",
                    f'<?xml version="1.0" encoding="UTF-8"?>\n<chartsheet xmlns="{ns["main"]}"/>',
                )
            else:
                archive.writestr(
                    f"xl/worksheets/sheet{i}.xml", sheet_xml(sheets[name], ns, (dimensions or {}).get(name))
                )
    return path
